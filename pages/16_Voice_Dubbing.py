import streamlit as st

from lib import forms, ui

ctx = ui.setup_page("Voice Dubbing", "🌐")
st.title("🌐 Voice Dubbing")
forms.task_form(ctx, "voice_dubbing")
