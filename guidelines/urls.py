from django.urls import path

from .views import approvals, employee, hr

from .views import hr_import  # isort: skip
from .views import dashboards, notifications, people, reports, webhooks

from .views import questions  # isort: skip

app_name = "guidelines"

urlpatterns = [
    path("", employee.home, name="home"),
    path("my/acknowledgements/", employee.history, name="history"),
    path("my/acknowledgements/<int:pk>/", employee.receipt, name="receipt"),
    path("guidelines/<slug:slug>/", employee.guideline_detail, name="detail"),
    path("guidelines/<slug:slug>/versions/", employee.version_list, name="versions"),
    path("guidelines/<slug:slug>/acknowledge/", employee.acknowledge, name="acknowledge"),
    path("guidelines/<slug:slug>/reading/", employee.reading_progress, name="reading_progress"),
    path("hr/guidelines/", hr.guideline_list, name="hr_guidelines"),
    path("hr/guidelines/new/", hr.guideline_new, name="hr_guideline_new"),
    path("hr/guidelines/<slug:slug>/", hr.guideline_detail, name="hr_guideline"),
    path("hr/guidelines/<slug:slug>/edit/", hr.guideline_edit, name="hr_guideline_edit"),
    path("hr/guidelines/<slug:slug>/retire/", hr.guideline_retire, name="hr_guideline_retire"),
    path("hr/guidelines/<slug:slug>/drafts/new/", hr.draft_new, name="hr_draft_new"),
    path("hr/guidelines/<slug:slug>/exemptions/", hr.exemption_grant, name="hr_exemption_grant"),
    path("hr/guidelines/<slug:slug>/extensions/", hr.extension_grant, name="hr_extension_grant"),
    path("hr/exemptions/<int:pk>/revoke/", hr.exemption_revoke, name="hr_exemption_revoke"),
    path("hr/drafts/preview/", hr.draft_preview, name="hr_draft_preview"),
    path("hr/drafts/<int:pk>/", hr.draft_detail, name="hr_draft"),
    path("hr/drafts/<int:pk>/edit/", hr.draft_edit, name="hr_draft_edit"),
    path("hr/drafts/<int:pk>/questions/", hr.draft_questions, name="hr_draft_questions"),
    path("hr/drafts/<int:pk>/review/", hr.draft_review, name="hr_draft_review"),
    path("hr/drafts/<int:pk>/approve/", hr.draft_approve, name="hr_draft_approve"),
    path("hr/drafts/<int:pk>/send-back/", hr.draft_send_back, name="hr_draft_send_back"),
    path("hr/drafts/<int:pk>/publish/", hr.draft_publish, name="hr_draft_publish"),
    path("hr/drafts/<int:pk>/works-council/", hr.draft_consent, name="hr_draft_consent"),
    path("hr/drafts/<int:pk>/works-council/withdraw/", hr.draft_consent_withdraw, name="hr_draft_consent_withdraw"),
    # urls: views/hr.py
    path("approvals/", approvals.inbox, name="approvals"),
    # urls: views/approvals.py
    path("hr/employees/import/", hr_import.employee_import, name="hr_import"),
    path("hr/employees/import/apply/", hr_import.import_apply, name="hr_import_apply"),
    # urls: views/hr_import.py
    path("hr/employees/", people.employee_search, name="hr_employees"),
    path("hr/employees/<int:pk>/", people.employee_detail, name="hr_employee"),
    path("hr/employees/<int:pk>/acknowledgements/<int:ack>/", people.employee_receipt, name="hr_employee_receipt"),
    # urls: views/people.py
    path("dashboards/", dashboards.overview, name="dashboard_overview"),
    path("dashboards/<slug:slug>/", dashboards.guideline_dashboard, name="dashboard_guideline"),
    path("dashboards/<slug:slug>/export.csv", dashboards.export, name="dashboard_export"),
    path("team/", dashboards.team, name="team"),
    # urls: views/dashboards.py
    path("hr/guidelines/<slug:slug>/nudge/", notifications.nudge, name="hr_nudge"),
    path("hr/notifications/", notifications.notification_log, name="hr_notifications"),
    # urls: views/notifications.py
    path("reports/", reports.audit_pack, name="report_pack"),
    path("reports/verify/", reports.verify, name="report_verify"),
    path("verify/", reports.public_verify, name="public_verify"),
    path("reports/<str:code>/", reports.report_status, name="report_status"),
    path("reports/<str:code>/download/", reports.report_download, name="report_download"),
    path("my/acknowledgements/<int:pk>/certificate.pdf", reports.certificate, name="report_certificate"),
    # urls: views/reports.py
    path("hr/webhooks/", webhooks.subscriber_list, name="hr_webhooks"),
    path("hr/webhooks/new/", webhooks.subscriber_new, name="hr_webhook_new"),
    path("hr/webhooks/<int:pk>/", webhooks.subscriber_detail, name="hr_webhook"),
    path("hr/webhooks/<int:pk>/disable/", webhooks.subscriber_disable, name="hr_webhook_disable"),
    path("hr/webhooks/<int:pk>/enable/", webhooks.subscriber_enable, name="hr_webhook_enable"),
    # urls: views/webhooks.py
    path("guidelines/<slug:slug>/ask/", questions.ask, name="ask"),
    path("guidelines/<slug:slug>/object/", questions.object_to, name="object"),
    path("my/questions/", questions.my_questions, name="my_questions"),
    path("questions/", questions.inbox, name="question_inbox"),
    path("questions/<int:pk>/", questions.question, name="question"),
    path("objections/<int:pk>/", questions.objection, name="objection"),
    # urls: views/questions.py
]
