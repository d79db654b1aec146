-- Most audit entries are a user acting on their own account (every
-- sign-in): the subject index finds those already, so the actor index
-- keeps only the entries where someone else acted (a helpdesk, an admin).
-- Each sign-in then writes one index entry, at a random page of a large
-- index, instead of two. AuditForUser asks for actor = name AND actor <>
-- subject, which this index answers.
DROP INDEX audit_by_actor;
CREATE INDEX audit_by_actor ON audit (actor, seq) WHERE actor <> subject;
