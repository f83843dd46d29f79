import streamlit as st

from lib import forms, ui

ctx = ui.setup_page("Video to Video", "🎞️")
st.title("🎞️ Video to Video")
forms.task_form(ctx, "video_to_video")
