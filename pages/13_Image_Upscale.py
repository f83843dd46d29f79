import streamlit as st

from lib import forms, ui

ctx = ui.setup_page("Image Upscale", "🔍")
st.title("🔍 Image Upscale")
forms.task_form(ctx, "image_upscale")
