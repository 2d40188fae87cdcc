"""Who the fuzzer is when it calls an operation: partner-signed operations are signed with the demo
hospital's key, token operations get the token of the persona the handler checks for, so handlers are
fuzzed and not only the authentication layer.

A new token operation whose handler wants something other than a patient adds its operationId here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Persona:
    subject: str
    kind: str
    roles: tuple[str, ...]
    hospital: str | None = None


PATIENT = Persona("fuzz-patient", "patient", ("patient",))
DOCTOR = Persona("fuzz-doctor", "staff", ("doctor",), "demo-hospital")
PHARMACIST = Persona("fuzz-pharmacist", "staff", ("pharmacist",), "demo-pharmacy")
GUIDE_OPERATOR = Persona("fuzz-guide-operator", "staff", ("guide-operator",), "demo-hospital")
OPERATOR = Persona("fuzz-operator", "staff", ("operator",), "platform")
ESCORT_OPERATOR = Persona("fuzz-escort-operator", "staff", ("escort-operator",), "demo-hospital")
ASSISTANT_AGENT = Persona("fuzz-assistant-agent", "staff", ("assistant-agent",), "demo-hospital")
KB_EDITOR = Persona("fuzz-kb-editor", "staff", ("kb-editor",), "demo-hospital")
KB_REVIEWER = Persona("fuzz-kb-reviewer", "staff", ("kb-reviewer",), "demo-hospital")
NAV_ADMIN = Persona("fuzz-nav-admin", "staff", ("nav-admin",), "demo-hospital")
# the centre's film administrator: holds film-admin for every hospital without a registry grant
FILM_ADMIN = Persona("fuzz-film-admin", "staff", ("film-admin",), "platform")
CONSULT_ADMIN = Persona("fuzz-consult-admin", "staff", ("consult-admin",), "platform")
CONTENT_STAFF = Persona("fuzz-content-staff", "staff", ("editor", "reviewer", "chief-editor"), "ruijin")
PARTY_ADMIN = Persona("fuzz-party-admin", "staff", ("party-admin", "party-member"), "centre")

# operationId -> persona, for token operations that are not the patient's own
STAFF_OPERATIONS: dict[str, Persona] = {
    "HealthDetailFunction.get_health_detail": OPERATOR,
    "GuideOutboxFunction.get_outbox": GUIDE_OPERATOR,
    "RxDocumentFunction.signing_material": DOCTOR,
    "RxSignFunction.sign": DOCTOR,
    "RxRevokeFunction.revoke": DOCTOR,
    "RxReviewFunction.review": PHARMACIST,
    "EscortOutboxFunction.get_outbox": ESCORT_OPERATOR,
    "AssistantDeskQueueFunction.desk_queue": ASSISTANT_AGENT,
    "AssistantDeskTranscriptFunction.desk_transcript": ASSISTANT_AGENT,
    "AssistantDeskTakeFunction.desk_take": ASSISTANT_AGENT,
    "AssistantDeskReplyFunction.desk_reply": ASSISTANT_AGENT,
    "AssistantDeskCloseFunction.desk_close": ASSISTANT_AGENT,
    "AssistantKbListFunction.kb_list": KB_EDITOR,
    "AssistantKbEntryFunction.kb_entry": KB_EDITOR,
    "AssistantKbDraftFunction.kb_draft": KB_EDITOR,
    "AssistantKbSubmitFunction.kb_submit": KB_EDITOR,
    "AssistantKbReviewFunction.kb_review": KB_REVIEWER,
    "AssistantKbImportFunction.kb_import": KB_EDITOR,
    "AssistantKbExportFunction.kb_export": KB_EDITOR,
    "WayfindingImportFunction.post_import": NAV_ADMIN,
    "WayfindingExportFunction.get_archive": NAV_ADMIN,
    "WayfindingPublishFunction.post_publish": NAV_ADMIN,
    "WayfindingPoisFunction.get_pois": NAV_ADMIN,
    "WayfindingPoiUpdateFunction.patch_poi": NAV_ADMIN,
    "WayfindingTagRenameFunction.post_tag_rename": NAV_ADMIN,
    "WayfindingPoiCsvFunction.get_pois_csv": NAV_ADMIN,
    "WayfindingPoiGeojsonFunction.get_pois_geojson": NAV_ADMIN,
    "WayfindingPoiImportFunction.post_pois_import": NAV_ADMIN,
    "WayfindingOperationsFunction.get_operations": NAV_ADMIN,
    "FilmAdminStaffListFunction.admin_list_staff": FILM_ADMIN,
    "FilmAdminStaffPutFunction.admin_put_staff": FILM_ADMIN,
    "FilmAdminStaffDeleteFunction.admin_delete_staff": FILM_ADMIN,
    "FilmAdminAccessGetFunction.admin_get_access": FILM_ADMIN,
    "FilmAdminAccessPutFunction.admin_put_access": FILM_ADMIN,
    "FilmAdminPartnerGetFunction.admin_get_partner": FILM_ADMIN,
    "FilmAdminPartnerPutFunction.admin_put_partner": FILM_ADMIN,
    "FilmAdminChangesFunction.admin_changes": FILM_ADMIN,
    "FilmAdminProblemsFunction.admin_study_problems": FILM_ADMIN,
}
# consult: platform staff administer scope; every other token route is a doctor's
STAFF_OPERATIONS |= {
    f"Consult{fn}Function.{view}": CONSULT_ADMIN
    for fn, view in (
        ("AgreementCreate", "create_agreement"),
        ("AgreementList", "list_agreements"),
        ("AgreementUpdate", "update_agreement"),
        ("CredentialPut", "put_credential"),
        ("CredentialList", "list_credentials"),
    )
}
STAFF_OPERATIONS |= {
    f"Consult{fn}Function.{view}": DOCTOR
    for fn, view in (
        ("Colleagues", "colleagues"),
        ("Apply", "apply"),
        ("List", "list_consultations"),
        ("Get", "get_consultation"),
        ("Consent", "record_consent"),
        ("Invitees", "change_invitees"),
        ("Attachment", "request_upload"),
        ("Submit", "submit"),
        ("Cancel", "cancel"),
        ("Respond", "respond"),
        ("Join", "join"),
        ("Leave", "leave"),
        ("End", "end"),
        ("ReportSave", "save_report"),
        ("ReportSign", "sign_report"),
        ("ReportAmend", "amend_report"),
        ("Fhir", "fhir_export"),
    )
}
# content: the editorial staff and the party administrator
STAFF_OPERATIONS |= {
    "ContentArticlesFunction.create_article": CONTENT_STAFF,
    "ContentReviseFunction.revise_article": CONTENT_STAFF,
    "ContentVideosFunction.create_video": CONTENT_STAFF,
    "ContentItemFunction.get_item": CONTENT_STAFF,
    "ContentItemQueueFunction.review_queue": CONTENT_STAFF,
    "ContentWorkflowFunction.submit_item": CONTENT_STAFF,
    "ContentWorkflowReviewFunction.review_item": CONTENT_STAFF,
    "ContentWorkflowWithdrawFunction.withdraw_item": CONTENT_STAFF,
    "ContentSourcesFunction.put_source": CONTENT_STAFF,
    "ContentSourcesListFunction.list_sources": CONTENT_STAFF,
    "ContentStatsFunction.content_stats": CONTENT_STAFF,
    "ContentWechatMenuFunction.put_wechat_menu": CONTENT_STAFF,
    "ContentPartyFunction.put_member": PARTY_ADMIN,
    "ContentPartyGetMemberFunction.get_member": PARTY_ADMIN,
    "ContentPartyPublishFunction.publish_activity": PARTY_ADMIN,
    "ContentPartyListFunction.list_activities": PARTY_ADMIN,
    "ContentPartySignUpFunction.sign_up": PARTY_ADMIN,
    "ContentPartyAttendFunction.attend": PARTY_ADMIN,
}


def persona_for(operation_id: str) -> Persona:
    return STAFF_OPERATIONS.get(operation_id, PATIENT)


PERSONAS = (
    PATIENT,
    DOCTOR,
    PHARMACIST,
    GUIDE_OPERATOR,
    OPERATOR,
    ESCORT_OPERATOR,
    ASSISTANT_AGENT,
    KB_EDITOR,
    KB_REVIEWER,
    NAV_ADMIN,
    FILM_ADMIN,
    CONSULT_ADMIN,
    CONTENT_STAFF,
    PARTY_ADMIN,
)
