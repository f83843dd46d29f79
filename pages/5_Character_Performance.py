import streamlit as st

from lib import forms, ui

ctx = ui.setup_page("Character Performance", "🎭")
st.title("🎭 Character Performance")
forms.task_form(ctx, "character_performance")
