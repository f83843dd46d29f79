import streamlit as st

from lib import forms, ui

ctx = ui.setup_page("Voice Isolation", "🎧")
st.title("🎧 Voice Isolation")
forms.task_form(ctx, "voice_isolation")
