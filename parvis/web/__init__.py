"""The web cockpit (``parvis serve``): dashboard, members, conversations, inbox and reports."""
