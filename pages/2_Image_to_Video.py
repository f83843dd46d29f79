import streamlit as st

from lib import forms, ui

ctx = ui.setup_page("Image to Video", "🖼️")
st.title("🖼️ Image to Video")
forms.task_form(ctx, "image_to_video")
