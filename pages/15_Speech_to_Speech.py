import streamlit as st

from lib import forms, ui

ctx = ui.setup_page("Speech to Speech", "🎙️")
st.title("🎙️ Speech to Speech")
forms.task_form(ctx, "speech_to_speech")
