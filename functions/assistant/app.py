"""The service bot (云客服): the patient's chat, the agent desk, the knowledge-base editor, the pages."""

from __future__ import annotations

from bianjie.assistant import page, wiring
from bianjie.assistant.api import (
    AgentReply,
    DeskQueueAnswer,
    DraftRequest,
    EntryView,
    ExportQuery,
    KbEntryList,
    KbExportAnswer,
    KbImportAnswer,
    KbImportRequest,
    KbReviewRequest,
    MessageAnswer,
    MessageRequest,
    PollAnswer,
    PollRequest,
    Transcript,
)
from bianjie.assistant.knowledge import EDITOR, REVIEWER
from bianjie.kit.actor import Actor
from bianjie.kit.config import env
from bianjie.kit.errors import NotFound
from bianjie.kit.signing import header_value
from bianjie.kit.web import ServiceApp
from chalice import Response

app = ServiceApp("assistant")
AGENT = "assistant-agent"
SESSION_ERRORS = ("SESSION_NOT_FOUND", "SESSION_FORBIDDEN")
DESK_ERRORS = ("CONVERSATION_NOT_FOUND", "HOSPITAL_REQUIRED")


def _patient_or_anonymous() -> Actor | None:
    """A patient token when one is sent (the session is then bound to the patient), else anonymous."""
    if header_value(app.current_request.headers, "Authorization"):
        return app.patient_actor()
    return None


# -- the patient's chat ---------------------------------------------------------------------------


@app.route(
    "/assistant/messages",
    methods=["POST"],
    request=MessageRequest,
    response=MessageAnswer,
    summary="Send a message to the service bot (anonymous session, or with a patient token)",
    errors=(*SESSION_ERRORS, "MESSAGE_EMPTY", "MESSAGE_BINARY", "RATE_LIMITED", "SESSION_CONTENDED"),
)
def post_message() -> MessageAnswer:
    return wiring.conversations().message(_patient_or_anonymous(), app.body(MessageRequest))


@app.route(
    "/assistant/sessions/poll",
    methods=["POST"],
    request=PollRequest,
    response=PollAnswer,
    summary="The session's messages after a sequence number (agent replies) and its handoff status",
    errors=SESSION_ERRORS,
)
def poll() -> PollAnswer:
    body = app.body(PollRequest)
    return wiring.conversations().poll(_patient_or_anonymous(), body.session, body.after)


# -- the agent desk -------------------------------------------------------------------------------


@app.route(
    "/assistant/desk/queue",
    methods=["GET"],
    auth="token",
    response=DeskQueueAnswer,
    summary="Handed-off conversations of the agent's hospital (no message text)",
    errors=("HOSPITAL_REQUIRED",),
)
def desk_queue() -> DeskQueueAnswer:
    return wiring.conversations().queue(app.staff_actor(AGENT))


@app.route(
    "/assistant/desk/conversations/{conversation_id}",
    methods=["GET"],
    auth="token",
    response=Transcript,
    summary="A conversation's transcript, the bot's guesses and suggested answers (audited)",
    errors=DESK_ERRORS,
)
def desk_transcript(conversation_id: str) -> Transcript:
    return wiring.conversations().transcript(app.staff_actor(AGENT), conversation_id)


@app.route(
    "/assistant/desk/conversations/{conversation_id}/take",
    methods=["POST"],
    auth="token",
    response=Transcript,
    summary="Take a waiting conversation",
    errors=(*DESK_ERRORS, "CONVERSATION_NOT_WAITING", "CONVERSATION_CONTENDED"),
)
def desk_take(conversation_id: str) -> Transcript:
    return wiring.conversations().take(app.staff_actor(AGENT), conversation_id)


@app.route(
    "/assistant/desk/conversations/{conversation_id}/reply",
    methods=["POST"],
    auth="token",
    request=AgentReply,
    response=Transcript,
    summary="Reply to the patient (the reply reaches the widget)",
    errors=(*DESK_ERRORS, "CONVERSATION_NOT_TAKEN", "MESSAGE_EMPTY", "MESSAGE_BINARY", "CONVERSATION_CONTENDED"),
)
def desk_reply(conversation_id: str) -> Transcript:
    actor = app.staff_actor(AGENT)
    return wiring.conversations().reply(actor, conversation_id, app.body(AgentReply).text)


@app.route(
    "/assistant/desk/conversations/{conversation_id}/close",
    methods=["POST"],
    auth="token",
    response=Transcript,
    summary="End the handoff (the bot answers again)",
    errors=(*DESK_ERRORS, "CONVERSATION_NOT_HANDED_OFF", "CONVERSATION_NOT_TAKEN", "CONVERSATION_CONTENDED"),
)
def desk_close(conversation_id: str) -> Transcript:
    return wiring.conversations().close(app.staff_actor(AGENT), conversation_id)


# -- the knowledge-base editor --------------------------------------------------------------------


@app.route(
    "/assistant/kb/entries",
    methods=["GET"],
    auth="token",
    response=KbEntryList,
    summary="The hospital's knowledge entries with their versions and drafts",
    errors=("HOSPITAL_REQUIRED",),
)
def kb_list() -> KbEntryList:
    return wiring.editor().list(app.staff_actor(EDITOR, REVIEWER))


@app.route(
    "/assistant/kb/entries/{entry_id}",
    methods=["GET"],
    auth="token",
    response=EntryView,
    summary="One entry: published version, draft, history",
    errors=("KB_ENTRY_NOT_FOUND", "HOSPITAL_REQUIRED"),
)
def kb_entry(entry_id: str) -> EntryView:
    return wiring.editor().view(app.staff_actor(EDITOR, REVIEWER), entry_id)


@app.route(
    "/assistant/kb/entries/{entry_id}/draft",
    methods=["PUT"],
    auth="token",
    request=DraftRequest,
    response=EntryView,
    summary="Write the entry's draft (editor)",
    errors=("KB_ENTRY_ID_INVALID", "HOSPITAL_REQUIRED", "KB_ENTRY_NOT_FOUND"),
)
def kb_draft(entry_id: str) -> EntryView:
    actor = app.staff_actor(EDITOR)
    return wiring.editor().save_draft(actor, entry_id, app.body(DraftRequest))


@app.route(
    "/assistant/kb/entries/{entry_id}/submit",
    methods=["POST"],
    auth="token",
    response=EntryView,
    summary="Submit the draft for review (editor)",
    errors=("KB_DRAFT_NOT_FOUND", "KB_ALREADY_IN_REVIEW", "HOSPITAL_REQUIRED", "KB_ENTRY_NOT_FOUND"),
)
def kb_submit(entry_id: str) -> EntryView:
    return wiring.editor().submit(app.staff_actor(EDITOR), entry_id)


@app.route(
    "/assistant/kb/entries/{entry_id}/review",
    methods=["POST"],
    auth="token",
    request=KbReviewRequest,
    response=EntryView,
    summary="Approve (publish) or reject the draft (reviewer, not its author)",
    errors=(
        "KB_DRAFT_NOT_FOUND",
        "KB_NOT_IN_REVIEW",
        "KB_REVIEWER_IS_AUTHOR",
        "KB_CONTENDED",
        "HOSPITAL_REQUIRED",
        "KB_ENTRY_NOT_FOUND",
    ),
)
def kb_review(entry_id: str) -> EntryView:
    actor = app.staff_actor(REVIEWER)
    return wiring.editor().review(actor, entry_id, app.body(KbReviewRequest))


@app.route(
    "/assistant/kb/import",
    methods=["POST"],
    auth="token",
    request=KbImportRequest,
    response=KbImportAnswer,
    summary="Import JSONL or CSV entries as drafts (editor)",
    errors=("KB_IMPORT_INVALID", "KB_IMPORT_EMPTY", "KB_IMPORT_TOO_MANY", "KB_ENTRY_ID_INVALID", "HOSPITAL_REQUIRED"),
)
def kb_import() -> KbImportAnswer:
    actor = app.staff_actor(EDITOR)
    body = app.body(KbImportRequest)
    return wiring.editor().import_(actor, body.format, body.content)


@app.route(
    "/assistant/kb/export",
    methods=["GET"],
    auth="token",
    query=ExportQuery,
    response=KbExportAnswer,
    summary="Export the hospital's published knowledge as JSONL or CSV",
    errors=("HOSPITAL_REQUIRED",),
)
def kb_export() -> KbExportAnswer:
    actor = app.staff_actor(EDITOR, REVIEWER)
    return wiring.editor().export(actor, app.query(ExportQuery).format, wiring.editor_knowledge())


# -- pages ----------------------------------------------------------------------------------------


@app.route(
    "/assistant/pages/{name}",
    methods=["GET"],
    summary="The chat widget (chat) and the agent desk (desk), HTML",
    errors=("PAGE_NOT_FOUND",),
    media_type="text/html",
)
def get_page(name: str) -> Response:
    try:
        document = page.page_html(wiring.web_objects(), wiring.web_bucket(), name)  # type: ignore[arg-type]
    except NotFound:
        return page.not_found()
    return page.render(
        document, stage=env("BIANJIE_STAGE", "local") or "local", frame_ancestors=page.frame_ancestors(name)
    )


@app.route(
    "/assistant/pages/assets/{name}",
    methods=["GET"],
    summary="The pages' scripts and styles (content-hashed)",
    errors=("ASSET_NOT_FOUND",),
)
def get_asset(name: str) -> Response:
    body = page.asset(wiring.web_objects(), wiring.web_bucket(), name)  # type: ignore[arg-type]
    return Response(
        body=body.decode("utf-8"),
        status_code=200,
        headers={
            "Content-Type": page.content_type(name),
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )
