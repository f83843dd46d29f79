import streamlit as st

from lib import forms, ui

ctx = ui.setup_page("Avatar Video", "🧑‍💼")
st.title("🧑‍💼 Avatar Video")
forms.task_form(ctx, "avatar_video")
