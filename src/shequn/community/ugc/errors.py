"""UGC errors: stable codes, messages in ugc/locales as error.<code>."""

from shequn.core.errors import Conflict, NotFound, PermissionDenied, ShequnError, TooLarge, ValidationFailed


class PostNotFound(NotFound):
    """No such post or question in this workspace (or not visible to this member)."""

    code = "ugc_post_not_found"


class CommentNotFound(NotFound):
    """No such comment or answer."""

    code = "ugc_comment_not_found"


class ReviewNotFound(NotFound):
    """No such review."""

    code = "ugc_review_not_found"


class MediaNotFound(NotFound):
    """No such image in this workspace."""

    code = "ugc_media_not_found"


class ImageTooLarge(TooLarge):
    """The image exceeds the byte or pixel limits (params name both limits)."""

    code = "image_too_large"


class NotAnImage(ShequnError):
    """The upload is not a JPEG, PNG or WebP image."""

    code = "not_an_image"
    status_code = 415


class EmptyContent(ValidationFailed):
    """Nothing to publish: no text and no photo."""

    code = "ugc_empty"


class UnknownMedia(ValidationFailed):
    """A photo reference that was not uploaded to this workspace, or too many photos."""

    code = "ugc_unknown_media"


class UnknownReaction(ValidationFailed):
    """A reaction outside the fixed set."""

    code = "ugc_unknown_reaction"


class NotAQuestion(Conflict):
    """Only questions have accepted answers."""

    code = "ugc_not_a_question"


class AnswerNotAcceptable(Conflict):
    """The answer is not an approved answer of this question."""

    code = "ugc_answer_not_acceptable"


class NotTheAsker(PermissionDenied):
    """Only the asker (or an operator) may accept an answer."""

    code = "ugc_not_the_asker"


class MembersOnly(PermissionDenied):
    """The community's content is visible to its members only."""

    code = "ugc_members_only"


class BadModeration(ValidationFailed):
    """An unknown moderation status or action."""

    code = "ugc_bad_moderation"


class FeatureUnapproved(Conflict):
    """Only approved posts can be pinned."""

    code = "ugc_feature_unapproved"


class OwnReview(Conflict):
    """A reviewer cannot vote their own review helpful."""

    code = "ugc_own_review"
