import streamlit as st

from lib import forms, ui

ctx = ui.setup_page("Lip Sync", "👄")
st.title("👄 Lip Sync")
forms.task_form(ctx, "lip_sync")
