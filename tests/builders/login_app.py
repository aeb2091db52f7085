"""A tiny dashboard for the login AppTests (tests/unit/test_dashboard_login.py): the login
of `dashboards.auth`, then who is logged in, their pages, and one write behind `require`."""

import streamlit as st

from dashboards import auth

user = auth.current_user()
if user is None:
    auth.login_form()  # stops the run
st.text(f"user: {user.name} ({user.role})")
st.text("pages: " + ", ".join(auth.visible_pages(user)))
if st.button("Label as false positive", key="label"):
    try:
        auth.require(user, "label")  # server side, whatever the page showed
    except PermissionError as refused:
        st.error(auth.safe_text(refused))
    else:
        st.text(f"labelled by {user.name}")
auth.logout_button()
