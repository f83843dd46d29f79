import streamlit as st

from lib import forms, ui

ctx = ui.setup_page("Video to HDR", "🌅")
st.title("🌅 Video to HDR")
forms.task_form(ctx, "video_to_hdr")
