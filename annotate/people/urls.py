from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from annotate.people import apis, views

app_name = "people"
urlpatterns: list[URLPattern | URLResolver] = [
    path("people/", views.people_list, name="list"),
    path("people/<int:user_id>/<str:action>", views.person_action, name="action"),
    path("people/tokens/", views.tokens, name="tokens"),
    path("people/tokens/<int:token_id>/revoke", views.token_revoke, name="token-revoke"),
    path("campaigns/<int:campaign_id>/people/", views.campaign_people, name="campaign"),
    path("invite/<str:token>/", views.invitation, name="invitation"),
    path("api/v1/tokens", apis.ApiTokenListCreateApi.as_view(), name="api-tokens"),
    path("api/v1/tokens/<int:token_id>", apis.ApiTokenRevokeApi.as_view(), name="api-token"),
    path("api/v1/service-accounts", apis.ServiceAccountCreateApi.as_view(), name="api-service-accounts"),
    path("api/v1/invitations", apis.InvitationCreateApi.as_view(), name="api-invitations"),
    path("api/v1/users/<int:user_id>", apis.UserUpdateApi.as_view(), name="api-user"),
    path("api/v1/campaigns/<int:campaign_id>/members", apis.CampaignMemberListAddApi.as_view(), name="api-members"),
    path(
        "api/v1/campaigns/<int:campaign_id>/members/<int:user_id>",
        apis.CampaignMemberRemoveApi.as_view(),
        name="api-member",
    ),
    path("api/v1/campaigns/<int:campaign_id>/progress", apis.CampaignProgressApi.as_view(), name="api-progress"),
]
