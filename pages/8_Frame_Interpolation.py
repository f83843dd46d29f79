import streamlit as st

from lib import forms, ui

ctx = ui.setup_page("Frame Interpolation", "⏱️")
st.title("⏱️ Frame Interpolation")
forms.task_form(ctx, "frame_interpolation")
