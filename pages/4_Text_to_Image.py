import streamlit as st

from lib import forms, ui

ctx = ui.setup_page("Text to Image", "🎨")
st.title("🎨 Text to Image")
forms.task_form(ctx, "text_to_image")
