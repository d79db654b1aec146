-- Why a handoff was refused (storage.RefusalReason), so that the desktop
-- can tell a mistyped number from "This was not me": '' until refused.
ALTER TABLE recovery_sessions ADD COLUMN refusal_reason TEXT NOT NULL DEFAULT '';
