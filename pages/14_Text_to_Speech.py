import streamlit as st

from lib import forms, ui

ctx = ui.setup_page("Text to Speech", "🗣️")
st.title("🗣️ Text to Speech")
forms.task_form(ctx, "text_to_speech")
