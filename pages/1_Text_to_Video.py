import streamlit as st

from lib import forms, ui

ctx = ui.setup_page("Text to Video", "🎬")
st.title("🎬 Text to Video")
forms.task_form(ctx, "text_to_video")
