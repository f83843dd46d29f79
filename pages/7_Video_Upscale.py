import streamlit as st

from lib import forms, ui

ctx = ui.setup_page("Video Upscale", "🔍")
st.title("🔍 Video Upscale")
forms.task_form(ctx, "video_upscale")
