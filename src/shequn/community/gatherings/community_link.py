"""The few things gatherings ask of community core, in one place (through its service only)."""

from __future__ import annotations

from sqlalchemy.orm import Session

# Members who are muted still belong to the group: muting limits posting, not attending.
BELONGING = ("active", "muted")


def member_community_ids(session: Session, *, workspace_id: int, customer_id: int | None) -> list[int]:
    """Ids of the communities the customer belongs to (empty for anonymous visitors)."""
    if customer_id is None:
        return []
    from shequn.community import service as community_service

    pairs = community_service.list_communities_of(session, workspace_id=workspace_id, customer_id=customer_id)
    return [c.id for c, m in pairs if m.status in BELONGING]


def is_member(session: Session, *, workspace_id: int, community_id: int | None, customer_id: int | None) -> bool:
    """Whether the customer belongs to the community."""
    if community_id is None or customer_id is None:
        return False
    from shequn.community import service as community_service

    m = community_service.get_membership(
        session, workspace_id=workspace_id, community_id=community_id, customer_id=customer_id
    )
    return m is not None and m.status in BELONGING


def check_community(session: Session, *, workspace_id: int, community_id: int) -> None:
    """Raise CommunityNotFound unless the community exists in this workspace."""
    from shequn.community import service as community_service

    community_service.get_community(session, workspace_id=workspace_id, community_id=community_id)


def community_name(session: Session, *, workspace_id: int, community_id: int | None) -> str:
    """The community's name for display ('' when none or gone)."""
    if community_id is None:
        return ""
    from shequn.community import service as community_service
    from shequn.core.errors import NotFound

    try:
        return community_service.get_community(session, workspace_id=workspace_id, community_id=community_id).name
    except NotFound:
        return ""


def record_checkin(session: Session, *, workspace_id: int, community_id: int | None, customer_id: int) -> None:
    """Count a check-in as community activity (feeds segment rules on `community.checkin`)."""
    if community_id is None:
        return
    from shequn.community import service as community_service
    from shequn.core.errors import NotFound

    try:
        community_service.record_activity(
            session, workspace_id=workspace_id, community_id=community_id, customer_id=customer_id, kind="checkin"
        )
    except NotFound:
        return  # the community was deleted since: the check-in itself still counts


def community_choices(session: Session, *, workspace_id: int) -> list[tuple[int, str]]:
    """(id, name) of the workspace's communities, for the console's community picker."""
    from shequn.community import service as community_service

    return [(c.id, c.name) for c in community_service.list_communities(session, workspace_id=workspace_id)]
