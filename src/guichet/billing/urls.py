from django.urls import path

from . import views, views_staff

app_name = "billing"

P = "manage/billing/<slug:portal>/<slug:organisation>/"
F = "<slug:portal>/famille/factures/"

urlpatterns = [
    # Staff (first: "manage/..." would otherwise match "<slug:portal>/...")
    path("manage/billing/<slug:portal>/", views_staff.portal_home, name="staff-portal"),
    path(P, views_staff.home, name="staff-home"),
    path(P + "households/<str:reference>/", views_staff.household, name="staff-household"),
    path(P + "households/<str:reference>/deposit/", views_staff.deposit, name="staff-deposit"),
    path(P + "households/<str:reference>/refund/", views_staff.refund, name="staff-refund"),
    path(P + "receipts/<str:receipt>/", views_staff.receipt, name="staff-receipt"),
    path(P + "invoices/<int:pk>/", views_staff.invoice, name="staff-invoice"),
    path(P + "invoices/<int:pk>/pdf/", views_staff.invoice_pdf, name="staff-invoice-pdf"),
    path(P + "invoices/<int:pk>/payment/", views_staff.invoice_payment, name="staff-invoice-payment"),
    path(P + "invoices/<int:pk>/credit-note/", views_staff.credit_note, name="staff-credit-note"),
    path(P + "invoices/<int:pk>/discard/", views_staff.draft_discard, name="staff-draft-discard"),
    path(P + "runs/", views_staff.runs, name="staff-runs"),
    path(P + "runs/<int:pk>/", views_staff.run_detail, name="staff-run"),
    path(P + "runs/<int:pk>/progress/", views_staff.run_progress, name="staff-run-progress"),
    path(P + "runs/<int:pk>/finalise/", views_staff.run_finalise, name="staff-run-finalise"),
    path(P + "runs/<int:pk>/cancel/", views_staff.run_cancel, name="staff-run-cancel"),
    path(P + "runs/<int:pk>/resume/", views_staff.run_resume, name="staff-run-resume"),
    path(P + "treasury/", views_staff.treasury_export, name="staff-treasury"),
    # Families
    path(F, views.account, name="family-account"),
    path(F + "<int:pk>/", views.invoice, name="family-invoice"),
    path(F + "<int:pk>/pdf/", views.invoice_pdf, name="family-invoice-pdf"),
]
