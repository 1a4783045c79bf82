BEGIN TRANSACTION;
CREATE TABLE action_request (
	id INTEGER NOT NULL, 
	incident_id INTEGER NOT NULL, 
	action VARCHAR NOT NULL, 
	parameters JSON NOT NULL, 
	risk VARCHAR NOT NULL, 
	runner VARCHAR NOT NULL, 
	"plan" VARCHAR NOT NULL, 
	needs_approval BOOLEAN NOT NULL, 
	status VARCHAR NOT NULL, 
	reason VARCHAR NOT NULL, 
	proposed_by VARCHAR NOT NULL, 
	proposed_at DATETIME NOT NULL, 
	expires_at DATETIME NOT NULL, 
	gate JSON NOT NULL, 
	decided_by VARCHAR, 
	decided_at DATETIME, 
	decision_reason VARCHAR, 
	approval_id VARCHAR, 
	approval_token VARCHAR, 
	approval_expires_at DATETIME, 
	started_at DATETIME, 
	finished_at DATETIME, 
	output VARCHAR, 
	verification VARCHAR, 
	PRIMARY KEY (id), 
	FOREIGN KEY(incident_id) REFERENCES incident (id)
);
INSERT INTO "action_request" VALUES(1,1,'restart-checkout','{"service": "checkout", "token": "${HOOK_TOKEN}"}','containment','webhook','POST http://127.0.0.1:9/restart',1,'approved','checkout-api down','workbench','2026-03-01 12:03:00.000000','2026-03-01 12:33:00.000000','[{"check": "allowed", "ok": true}]','alice','2026-03-01 12:04:00.000000',NULL,'appr-0001',NULL,NULL,NULL,NULL,NULL,NULL);
CREATE TABLE alert (
	id INTEGER NOT NULL, 
	fingerprint VARCHAR NOT NULL, 
	starts_at DATETIME NOT NULL, 
	status VARCHAR NOT NULL, 
	ends_at DATETIME, 
	alertname VARCHAR NOT NULL, 
	labels JSON NOT NULL, 
	annotations JSON NOT NULL, 
	generator_url VARCHAR, 
	source VARCHAR NOT NULL, 
	origin VARCHAR NOT NULL, 
	first_received DATETIME NOT NULL, 
	last_received DATETIME NOT NULL, 
	deliveries INTEGER NOT NULL, 
	finding_id INTEGER, 
	raw JSON NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_alert_episode UNIQUE (fingerprint, starts_at), 
	FOREIGN KEY(finding_id) REFERENCES finding (id)
);
INSERT INTO "alert" VALUES(1,'c0ffee00d15ea5e5','2026-03-01 12:01:00.000000','firing',NULL,'HighErrorRatio','{"alertname": "HighErrorRatio", "service": "shop", "severity": "critical"}','{"summary": "error ratio above 5%"}','http://prometheus:9090/graph','alertmanager-webhook','webhook','2026-03-01 12:01:00.000000','2026-03-01 12:01:00.000000',1,2,'{"status": "firing", "labels": {"alertname": "HighErrorRatio"}}');
CREATE TABLE approval_use (
	approval_id VARCHAR NOT NULL, 
	request_id INTEGER NOT NULL, 
	used_at DATETIME NOT NULL, 
	PRIMARY KEY (approval_id), 
	FOREIGN KEY(request_id) REFERENCES action_request (id)
);
INSERT INTO "approval_use" VALUES('appr-0001',1,'2026-03-01 12:05:00.000000');
CREATE TABLE evidence (
	id INTEGER NOT NULL, 
	incident_id INTEGER NOT NULL, 
	finding_id INTEGER, 
	observation_id INTEGER, 
	at DATETIME NOT NULL, 
	kind VARCHAR NOT NULL, 
	summary VARCHAR NOT NULL, 
	data JSON NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(incident_id) REFERENCES incident (id), 
	FOREIGN KEY(finding_id) REFERENCES finding (id), 
	FOREIGN KEY(observation_id) REFERENCES observation (id)
);
INSERT INTO "evidence" VALUES(1,1,1,1,'2026-03-01 12:00:00.000000','probe','http probe of checkout-api failed: cannot connect','{"checks": [], "status": null, "duration_ms": 12.5, "error": "cannot connect", "values": {}}');
INSERT INTO "evidence" VALUES(2,1,1,2,'2026-03-01 12:00:30.000000','probe','http probe of checkout-api failed: cannot connect','{"checks": [], "status": null, "duration_ms": 12.5, "error": "cannot connect", "values": {}}');
INSERT INTO "evidence" VALUES(3,2,2,NULL,'2026-03-01 12:01:00.000000','alert','alert HighErrorRatio firing (alertmanager-webhook)','{"labels": {"alertname": "HighErrorRatio", "service": "shop", "severity": "critical"}, "annotations": {"summary": "error ratio above 5%"}, "starts_at": "2026-03-01T12:01:00+00:00", "ends_at": null, "generator_url": "http://prometheus:9090/graph", "checks": []}');
CREATE TABLE finding (
	id INTEGER NOT NULL, 
	rule VARCHAR NOT NULL, 
	target VARCHAR NOT NULL, 
	service VARCHAR NOT NULL, 
	severity VARCHAR NOT NULL, 
	summary VARCHAR NOT NULL, 
	correlation_key VARCHAR NOT NULL, 
	first_seen DATETIME NOT NULL, 
	last_seen DATETIME NOT NULL, 
	occurrences INTEGER NOT NULL, 
	recovered_at DATETIME, 
	incident_id INTEGER, 
	labels JSON DEFAULT '{}' NOT NULL, 
	suppressed_by VARCHAR, 
	PRIMARY KEY (id), 
	FOREIGN KEY(incident_id) REFERENCES incident (id)
);
INSERT INTO "finding" VALUES(1,'probe:http','checkout-api','shop','warning','checkout-api failing: cannot connect','shop/checkout-api','2026-03-01 12:00:30.000000','2026-03-01 12:00:30.000000',2,NULL,1,'{"kind": "http", "category": "availability", "rule": "probe:http", "target": "checkout-api", "service": "shop", "severity": "warning"}',NULL);
INSERT INTO "finding" VALUES(2,'alert:HighErrorRatio','HighErrorRatio','shop','critical','HighErrorRatio: error ratio above 5%','shop/alert:HighErrorRatio','2026-03-01 12:01:00.000000','2026-03-01 12:01:00.000000',1,NULL,2,'{"alertname": "HighErrorRatio", "service": "shop", "severity": "critical", "rule": "alert:HighErrorRatio", "target": "HighErrorRatio"}',NULL);
CREATE TABLE hypothesis_run (
	id INTEGER NOT NULL, 
	incident_id INTEGER NOT NULL, 
	status VARCHAR NOT NULL, 
	requested_by VARCHAR NOT NULL, 
	requested_at DATETIME NOT NULL, 
	started_at DATETIME, 
	finished_at DATETIME, 
	evidence_key VARCHAR, 
	draft JSON NOT NULL, 
	refinement JSON, 
	reason VARCHAR, 
	decision_id INTEGER, 
	PRIMARY KEY (id), 
	FOREIGN KEY(incident_id) REFERENCES incident (id), 
	FOREIGN KEY(decision_id) REFERENCES routing_decision (id)
);
INSERT INTO "hypothesis_run" VALUES(1,1,'done','alice','2026-03-01 12:06:00.000000','2026-03-01 12:06:00.000000','2026-03-01 12:07:00.000000','ev-1','{"hypotheses": [{"cause": "load balancer"}]}','{"hypotheses": []}',NULL,1);
CREATE TABLE incident (
	id INTEGER NOT NULL, 
	title VARCHAR NOT NULL, 
	state VARCHAR NOT NULL, 
	severity VARCHAR NOT NULL, 
	service VARCHAR NOT NULL, 
	correlation_key VARCHAR NOT NULL, 
	opened_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	last_seen_at DATETIME NOT NULL, 
	resolved_at DATETIME, 
	finding_count INTEGER NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "incident" VALUES(1,'checkout-api failing: cannot connect','observed','warning','shop','shop/checkout-api','2026-03-01 12:00:30.000000','2026-03-01 12:00:30.000000','2026-03-01 12:00:30.000000',NULL,1);
INSERT INTO "incident" VALUES(2,'HighErrorRatio: error ratio above 5%','observed','critical','shop','shop/alert:HighErrorRatio','2026-03-01 12:01:00.000000','2026-03-01 12:01:00.000000','2026-03-01 12:01:00.000000',NULL,1);
CREATE TABLE ingest_payload (
	id INTEGER NOT NULL, 
	received_at DATETIME NOT NULL, 
	source VARCHAR NOT NULL, 
	accepted BOOLEAN NOT NULL, 
	reason VARCHAR, 
	alerts INTEGER NOT NULL, 
	body VARCHAR NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "ingest_payload" VALUES(1,'2026-03-01 12:01:00.000000','alertmanager-webhook',1,NULL,1,'{"alerts": []}');
CREATE TABLE log_cursor (
	target VARCHAR NOT NULL, 
	path VARCHAR NOT NULL, 
	inode VARCHAR, 
	"offset" BIGINT NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (target)
);
INSERT INTO "log_cursor" VALUES('app-log','/var/log/app.log','2049:131',5000000000,'2026-03-01 12:01:00.000000');
CREATE TABLE observation (
	id INTEGER NOT NULL, 
	target VARCHAR NOT NULL, 
	kind VARCHAR NOT NULL, 
	service VARCHAR NOT NULL, 
	ok BOOLEAN NOT NULL, 
	started_at DATETIME NOT NULL, 
	duration_ms FLOAT NOT NULL, 
	status INTEGER, 
	error VARCHAR, 
	checks JSON NOT NULL, 
	"values" JSON NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "observation" VALUES(1,'checkout-api','http','shop',0,'2026-03-01 12:00:00.000000',12.5,NULL,'cannot connect','[]','{}');
INSERT INTO "observation" VALUES(2,'checkout-api','http','shop',0,'2026-03-01 12:00:30.000000',12.5,NULL,'cannot connect','[]','{}');
CREATE TABLE routing_decision (
	id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	source VARCHAR NOT NULL, 
	origin VARCHAR, 
	external_key VARCHAR, 
	request_id VARCHAR, 
	task VARCHAR NOT NULL, 
	incident_id INTEGER, 
	category VARCHAR, 
	route JSON NOT NULL, 
	expected VARCHAR, 
	declared VARCHAR, 
	actual VARCHAR, 
	reason VARCHAR NOT NULL, 
	detail VARCHAR NOT NULL, 
	attempts JSON NOT NULL, 
	privacy_refusals INTEGER NOT NULL, 
	latency_ms FLOAT, 
	prompt_tokens INTEGER NOT NULL, 
	completion_tokens INTEGER NOT NULL, 
	tokens INTEGER NOT NULL, 
	cost FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (external_key), 
	FOREIGN KEY(incident_id) REFERENCES incident (id)
);
INSERT INTO "routing_decision" VALUES(1,'2026-03-01 12:06:00.000000','workbench',NULL,NULL,NULL,'hypothesis',1,'outage','["local", "remote"]','local',NULL,'local','none','','[{"provider": "local", "ok": true}]',0,812.0,900,120,1020,0.0);
CREATE TABLE rule_state (
	rule VARCHAR NOT NULL, 
	"group" VARCHAR NOT NULL, 
	labels JSON NOT NULL, 
	state VARCHAR NOT NULL, 
	active BOOLEAN NOT NULL, 
	pending_since DATETIME, 
	firing_since DATETIME, 
	last_active_at DATETIME, 
	flips JSON NOT NULL, 
	flapping BOOLEAN NOT NULL, 
	value FLOAT, 
	evaluated_at DATETIME, 
	finding_id INTEGER, 
	PRIMARY KEY (rule, "group"), 
	FOREIGN KEY(finding_id) REFERENCES finding (id)
);
INSERT INTO "rule_state" VALUES('shop-latency','{"service":"shop"}','{"service": "shop"}','pending',1,'2026-03-01 12:00:00.000000',NULL,NULL,'["2026-03-01T12:00:00+00:00"]',0,0.75,'2026-03-01 12:00:00.000000',NULL);
CREATE TABLE schema_version (
	version INTEGER NOT NULL, 
	applied_at DATETIME NOT NULL, 
	description VARCHAR NOT NULL, 
	PRIMARY KEY (version)
);
INSERT INTO "schema_version" VALUES(4,'2026-12-02 11:33:34.035124','created at the latest schema');
CREATE TABLE silence (
	id INTEGER NOT NULL, 
	kind VARCHAR NOT NULL, 
	matchers JSON NOT NULL, 
	starts_at DATETIME NOT NULL, 
	ends_at DATETIME, 
	recurrence JSON, 
	author VARCHAR NOT NULL, 
	comment VARCHAR NOT NULL, 
	created_at DATETIME NOT NULL, 
	expired_at DATETIME, 
	expired_by VARCHAR, 
	PRIMARY KEY (id)
);
INSERT INTO "silence" VALUES(1,'silence','[{"name": "service", "op": "=", "value": "search"}]','2026-03-01 12:00:00.000000','2026-03-01 14:00:00.000000','null','alice','search reindex','2026-03-01 12:00:00.000000',NULL,NULL);
CREATE TABLE target_state (
	target VARCHAR NOT NULL, 
	consecutive_failures INTEGER NOT NULL, 
	consecutive_successes INTEGER NOT NULL, 
	last_ok BOOLEAN, 
	last_observed_at DATETIME, 
	active_finding_id INTEGER, 
	PRIMARY KEY (target), 
	FOREIGN KEY(active_finding_id) REFERENCES finding (id)
);
INSERT INTO "target_state" VALUES('checkout-api',2,0,0,'2026-03-01 12:00:30.000000',1);
CREATE TABLE timeline_entry (
	id INTEGER NOT NULL, 
	incident_id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	actor VARCHAR NOT NULL, 
	kind VARCHAR NOT NULL, 
	from_state VARCHAR, 
	to_state VARCHAR, 
	message VARCHAR NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(incident_id) REFERENCES incident (id)
);
INSERT INTO "timeline_entry" VALUES(1,1,'2026-03-01 12:00:30.000000','workbench','transition',NULL,'observed','opened: checkout-api failing: cannot connect');
INSERT INTO "timeline_entry" VALUES(2,1,'2026-03-01 12:00:30.000000','workbench','finding',NULL,NULL,'finding #1 folded in: checkout-api failing: cannot connect');
INSERT INTO "timeline_entry" VALUES(3,1,'2026-03-01 12:02:00.000000','alice','note',NULL,NULL,'looking at the load balancer');
INSERT INTO "timeline_entry" VALUES(4,2,'2026-03-01 12:01:00.000000','workbench','transition',NULL,'observed','opened: HighErrorRatio: error ratio above 5%');
INSERT INTO "timeline_entry" VALUES(5,2,'2026-03-01 12:01:00.000000','workbench','finding',NULL,NULL,'finding #2 folded in: HighErrorRatio: error ratio above 5%');
INSERT INTO "timeline_entry" VALUES(6,1,'2026-03-01 12:03:00.000000','workbench','action',NULL,NULL,'action request #1 restart-checkout: proposed');
CREATE INDEX ix_observation_started_at ON observation (started_at);
CREATE INDEX ix_observation_target ON observation (target);
CREATE UNIQUE INDEX uq_incident_open_key ON incident (correlation_key) WHERE resolved_at IS NULL;
CREATE INDEX ix_incident_service ON incident (service);
CREATE INDEX ix_incident_state ON incident (state);
CREATE INDEX ix_ingest_payload_received_at ON ingest_payload (received_at);
CREATE INDEX ix_finding_correlation_key ON finding (correlation_key);
CREATE INDEX ix_finding_incident_id ON finding (incident_id);
CREATE INDEX ix_finding_target ON finding (target);
CREATE INDEX ix_timeline_entry_incident_id ON timeline_entry (incident_id);
CREATE INDEX ix_routing_decision_task ON routing_decision (task);
CREATE INDEX ix_routing_decision_incident_id ON routing_decision (incident_id);
CREATE INDEX ix_routing_decision_at ON routing_decision (at);
CREATE INDEX ix_action_request_incident_id ON action_request (incident_id);
CREATE INDEX ix_action_request_status ON action_request (status);
CREATE INDEX ix_action_request_action ON action_request (action);
CREATE INDEX ix_evidence_incident_id ON evidence (incident_id);
CREATE INDEX ix_alert_origin ON alert (origin);
CREATE INDEX ix_alert_fingerprint ON alert (fingerprint);
CREATE INDEX ix_hypothesis_run_incident_id ON hypothesis_run (incident_id);
COMMIT;
