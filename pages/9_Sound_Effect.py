import streamlit as st

from lib import forms, ui

ctx = ui.setup_page("Sound Effect", "🔊")
st.title("🔊 Sound Effect")
forms.task_form(ctx, "sound_effect")
