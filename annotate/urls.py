from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from annotate import views
from annotate.middleware import with_inline_styles
from annotate.people import views as people_views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Password change and reset (Django's views, this site's templates; reset mail goes to EMAIL_BACKEND).
    # These two also lift "must change password" (a password staff chose; annotate/people/middleware.py).
    path("accounts/password_change/", people_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/reset/<uidb64>/<token>/",
        people_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's initialiser as a script file, so the page needs no inline script.
    path("api/docs/", with_inline_styles(SpectacularSwaggerSplitView.as_view(url_name="schema")), name="api-docs"),
    path("", include("annotate.catalog.urls")),
    path("", include("annotate.labeling.urls")),
    path("", include("annotate.onboarding.urls")),
    path("", include("annotate.agreement.urls")),
    path("", include("annotate.exports.urls")),
    path("", include("rm_service.urls")),
    path("", include("annotate.people.urls")),
    # Last: any other path under /api/ answers the JSON 404, never an HTML page.
    re_path(r"^api/(?P<rest>.*)$", views.api_not_found),
]

handler400 = "annotate.views.bad_request"
handler403 = "annotate.views.permission_denied"
handler404 = "annotate.views.page_not_found"
handler500 = "annotate.views.server_error"
