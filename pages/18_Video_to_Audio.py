import streamlit as st

from lib import forms, ui

ctx = ui.setup_page("Video to Audio", "🎼")
st.title("🎼 Video to Audio")
forms.task_form(ctx, "video_to_audio")
