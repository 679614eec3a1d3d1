"""Display names of the keys the pages show (metrics, segments, kinds...), marked for translation.

``N_`` only marks a string for extraction into the catalogue; templates translate it when shown.
"""

from __future__ import annotations


def N_(message: str) -> str:
    return message


KPIS = {
    "activities": N_("Activities"),
    "active": N_("Active members per period"),
    "new": N_("New members"),
    "conversations": N_("Conversations started"),
    "response": N_("Response rate"),
    "first_response": N_("Time to first response"),
}
KPI_HELP = {
    "activities": N_("Everything that happened: posts, votes, badges, edits."),
    "active": N_("Members with at least one activity, on average per period."),
    "new": N_("Members whose first activity falls in the window."),
    "conversations": N_("Questions and threads opened by members."),
    "response": N_("Share of the conversations started that got a response from someone else."),
    "first_response": N_("Median time to the first response, averaged over the periods."),
}
CHARTS = {
    "activities": N_("Activity by kind"),
    "active": N_("Active members"),
    "new": N_("New members"),
    "response": N_("Response rate"),
    "first_response": N_("Median hours to first response"),
    "sentiment": N_("Sentiment"),
    "timeline": N_("Posts per month"),
}
SEGMENTS = {
    "newcomer": N_("Newcomers"),
    "involved": N_("Involved and core"),
    "core": N_("Core"),
    "silent": N_("Silent"),
    "veteran": N_("Veterans"),
    "at_risk": N_("At risk"),
    "returning": N_("Returning"),
    "champion": N_("Champions"),
}
SEGMENT_HELP = {
    "newcomer": N_("First activity in the last 30 days."),
    "involved": N_("Regular contributors, and the core that does most of the work."),
    "silent": N_("Registered, but never posted."),
    "veteran": N_("Here for more than a year and still active."),
    "at_risk": N_("Used to be regular, silent for 45 days."),
    "returning": N_("Back after a gap of 90 days or more."),
    "champion": N_("Accepted answers or help given to newcomers."),
}
KINDS = {
    "question": N_("question"),
    "answer": N_("answer"),
    "comment": N_("comment"),
    "message": N_("message"),
    "reply": N_("reply"),
    "action": N_("action"),
    "notice": N_("notice"),
    "wiki": N_("wiki"),
}
PERIODS = {
    "30d": N_("Last 30 days"),
    "90d": N_("Last 90 days"),
    "365d": N_("Last 12 months"),
    "all": N_("All time"),
}
GRAINS = {"day": N_("Day"), "week": N_("Week"), "month": N_("Month")}
ROLES = {"admin": N_("Administrator"), "moderator": N_("Moderator"), "analyst": N_("Analyst")}
REPORTS = {"metrics": N_("Metrics"), "members": N_("Members"), "inbox": N_("Open inbox")}
INBOX_STATES = {"open": N_("Open"), "answered": N_("Answered"), "handled": N_("Handled without answer")}
SLAS = {
    "on_track": N_("on track"),
    "breached": N_("overdue"),
    "met": N_("target met"),
    "missed": N_("target missed"),
    "none": N_("no target"),
}
QUEUE_STATES = {
    "pending": N_("Pending"),
    "approved": N_("Approved"),
    "removed": N_("Removed"),
    "dismissed": N_("Dismissed"),
}
DECISIONS = {"approve": N_("Approve"), "remove": N_("Remove"), "dismiss": N_("Dismiss")}
WEEKDAYS = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"), N_("Saturday"), N_("Sunday"))
# Messages shown after a form was carried out (the key travels in the redirect's query string).
NOTICES = {
    "answered": N_("Your answer was posted on the platform."),
    "approved": N_("Approved."),
    "dismissed": N_("Dismissed."),
    "removed_platform": N_("Removed, and deleted on the platform."),
    "removed_already": N_("Removed; it was already deleted on the platform."),
    "removed_here": N_("Removed in Parvis. This platform has no live connection: delete it there yourself."),
    "removed_failed": N_("Removed in Parvis, but the platform refused to delete it (see the audit log)."),
    "linked": N_("Identity linked."),
    "unlinked": N_("Identity unlinked."),
    "saved": N_("Settings saved."),
}
