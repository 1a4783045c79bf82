--
-- PostgreSQL database dump
--

\restrict UtN6T9Uhc7P40X7O7FVmlCKGGoaWKqYXi9Rp9Uq83nrAA7P9prx2mhsdh7LicOz

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: action_request; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.action_request (
    id integer NOT NULL,
    incident_id integer NOT NULL,
    action character varying NOT NULL,
    parameters json NOT NULL,
    risk character varying NOT NULL,
    runner character varying NOT NULL,
    plan character varying NOT NULL,
    needs_approval boolean NOT NULL,
    status character varying NOT NULL,
    reason character varying NOT NULL,
    proposed_by character varying NOT NULL,
    proposed_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    gate json NOT NULL,
    decided_by character varying,
    decided_at timestamp with time zone,
    decision_reason character varying,
    approval_id character varying,
    approval_token character varying,
    approval_expires_at timestamp with time zone,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    output character varying,
    verification character varying
);


--
-- Name: action_request_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.action_request_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: action_request_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.action_request_id_seq OWNED BY public.action_request.id;


--
-- Name: alert; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alert (
    id integer NOT NULL,
    fingerprint character varying NOT NULL,
    starts_at timestamp with time zone NOT NULL,
    status character varying NOT NULL,
    ends_at timestamp with time zone,
    alertname character varying NOT NULL,
    labels json NOT NULL,
    annotations json NOT NULL,
    generator_url character varying,
    source character varying NOT NULL,
    origin character varying NOT NULL,
    first_received timestamp with time zone NOT NULL,
    last_received timestamp with time zone NOT NULL,
    deliveries integer NOT NULL,
    finding_id integer,
    raw json NOT NULL
);


--
-- Name: alert_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.alert_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: alert_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.alert_id_seq OWNED BY public.alert.id;


--
-- Name: approval_use; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.approval_use (
    approval_id character varying NOT NULL,
    request_id integer NOT NULL,
    used_at timestamp with time zone NOT NULL
);


--
-- Name: evidence; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.evidence (
    id integer NOT NULL,
    incident_id integer NOT NULL,
    finding_id integer,
    observation_id integer,
    at timestamp with time zone NOT NULL,
    kind character varying NOT NULL,
    summary character varying NOT NULL,
    data json NOT NULL
);


--
-- Name: evidence_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.evidence_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: evidence_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.evidence_id_seq OWNED BY public.evidence.id;


--
-- Name: finding; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.finding (
    id integer NOT NULL,
    rule character varying NOT NULL,
    target character varying NOT NULL,
    service character varying NOT NULL,
    severity character varying NOT NULL,
    summary character varying NOT NULL,
    correlation_key character varying NOT NULL,
    first_seen timestamp with time zone NOT NULL,
    last_seen timestamp with time zone NOT NULL,
    occurrences integer NOT NULL,
    recovered_at timestamp with time zone,
    incident_id integer,
    labels json DEFAULT '{}'::json NOT NULL,
    suppressed_by character varying
);


--
-- Name: finding_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.finding_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: finding_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.finding_id_seq OWNED BY public.finding.id;


--
-- Name: hypothesis_run; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.hypothesis_run (
    id integer NOT NULL,
    incident_id integer NOT NULL,
    status character varying NOT NULL,
    requested_by character varying NOT NULL,
    requested_at timestamp with time zone NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    evidence_key character varying,
    draft json NOT NULL,
    refinement json,
    reason character varying,
    decision_id integer
);


--
-- Name: hypothesis_run_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.hypothesis_run_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: hypothesis_run_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.hypothesis_run_id_seq OWNED BY public.hypothesis_run.id;


--
-- Name: incident; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.incident (
    id integer NOT NULL,
    title character varying NOT NULL,
    state character varying NOT NULL,
    severity character varying NOT NULL,
    service character varying NOT NULL,
    correlation_key character varying NOT NULL,
    opened_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    last_seen_at timestamp with time zone NOT NULL,
    resolved_at timestamp with time zone,
    finding_count integer NOT NULL
);


--
-- Name: incident_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.incident_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: incident_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.incident_id_seq OWNED BY public.incident.id;


--
-- Name: ingest_payload; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ingest_payload (
    id integer NOT NULL,
    received_at timestamp with time zone NOT NULL,
    source character varying NOT NULL,
    accepted boolean NOT NULL,
    reason character varying,
    alerts integer NOT NULL,
    body character varying NOT NULL
);


--
-- Name: ingest_payload_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.ingest_payload_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: ingest_payload_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.ingest_payload_id_seq OWNED BY public.ingest_payload.id;


--
-- Name: log_cursor; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.log_cursor (
    target character varying NOT NULL,
    path character varying NOT NULL,
    inode character varying,
    "offset" bigint NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: observation; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.observation (
    id integer NOT NULL,
    target character varying NOT NULL,
    kind character varying NOT NULL,
    service character varying NOT NULL,
    ok boolean NOT NULL,
    started_at timestamp with time zone NOT NULL,
    duration_ms double precision NOT NULL,
    status integer,
    error character varying,
    checks json NOT NULL,
    "values" json NOT NULL
);


--
-- Name: observation_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.observation_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: observation_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.observation_id_seq OWNED BY public.observation.id;


--
-- Name: routing_decision; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.routing_decision (
    id integer NOT NULL,
    at timestamp with time zone NOT NULL,
    source character varying NOT NULL,
    origin character varying,
    external_key character varying,
    request_id character varying,
    task character varying NOT NULL,
    incident_id integer,
    category character varying,
    route json NOT NULL,
    expected character varying,
    declared character varying,
    actual character varying,
    reason character varying NOT NULL,
    detail character varying NOT NULL,
    attempts json NOT NULL,
    privacy_refusals integer NOT NULL,
    latency_ms double precision,
    prompt_tokens integer NOT NULL,
    completion_tokens integer NOT NULL,
    tokens integer NOT NULL,
    cost double precision NOT NULL
);


--
-- Name: routing_decision_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.routing_decision_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: routing_decision_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.routing_decision_id_seq OWNED BY public.routing_decision.id;


--
-- Name: rule_state; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.rule_state (
    rule character varying NOT NULL,
    "group" character varying NOT NULL,
    labels json NOT NULL,
    state character varying NOT NULL,
    active boolean NOT NULL,
    pending_since timestamp with time zone,
    firing_since timestamp with time zone,
    last_active_at timestamp with time zone,
    flips json NOT NULL,
    flapping boolean NOT NULL,
    value double precision,
    evaluated_at timestamp with time zone,
    finding_id integer
);


--
-- Name: schema_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_version (
    version integer NOT NULL,
    applied_at timestamp with time zone NOT NULL,
    description character varying NOT NULL
);


--
-- Name: schema_version_version_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.schema_version_version_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: schema_version_version_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.schema_version_version_seq OWNED BY public.schema_version.version;


--
-- Name: silence; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.silence (
    id integer NOT NULL,
    kind character varying NOT NULL,
    matchers json NOT NULL,
    starts_at timestamp with time zone NOT NULL,
    ends_at timestamp with time zone,
    recurrence json,
    author character varying NOT NULL,
    comment character varying NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expired_at timestamp with time zone,
    expired_by character varying
);


--
-- Name: silence_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.silence_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: silence_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.silence_id_seq OWNED BY public.silence.id;


--
-- Name: target_state; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.target_state (
    target character varying NOT NULL,
    consecutive_failures integer NOT NULL,
    consecutive_successes integer NOT NULL,
    last_ok boolean,
    last_observed_at timestamp with time zone,
    active_finding_id integer
);


--
-- Name: timeline_entry; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.timeline_entry (
    id integer NOT NULL,
    incident_id integer NOT NULL,
    at timestamp with time zone NOT NULL,
    actor character varying NOT NULL,
    kind character varying NOT NULL,
    from_state character varying,
    to_state character varying,
    message character varying NOT NULL
);


--
-- Name: timeline_entry_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.timeline_entry_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: timeline_entry_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.timeline_entry_id_seq OWNED BY public.timeline_entry.id;


--
-- Name: action_request id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.action_request ALTER COLUMN id SET DEFAULT nextval('public.action_request_id_seq'::regclass);


--
-- Name: alert id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert ALTER COLUMN id SET DEFAULT nextval('public.alert_id_seq'::regclass);


--
-- Name: evidence id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.evidence ALTER COLUMN id SET DEFAULT nextval('public.evidence_id_seq'::regclass);


--
-- Name: finding id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.finding ALTER COLUMN id SET DEFAULT nextval('public.finding_id_seq'::regclass);


--
-- Name: hypothesis_run id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.hypothesis_run ALTER COLUMN id SET DEFAULT nextval('public.hypothesis_run_id_seq'::regclass);


--
-- Name: incident id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.incident ALTER COLUMN id SET DEFAULT nextval('public.incident_id_seq'::regclass);


--
-- Name: ingest_payload id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ingest_payload ALTER COLUMN id SET DEFAULT nextval('public.ingest_payload_id_seq'::regclass);


--
-- Name: observation id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.observation ALTER COLUMN id SET DEFAULT nextval('public.observation_id_seq'::regclass);


--
-- Name: routing_decision id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.routing_decision ALTER COLUMN id SET DEFAULT nextval('public.routing_decision_id_seq'::regclass);


--
-- Name: schema_version version; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_version ALTER COLUMN version SET DEFAULT nextval('public.schema_version_version_seq'::regclass);


--
-- Name: silence id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.silence ALTER COLUMN id SET DEFAULT nextval('public.silence_id_seq'::regclass);


--
-- Name: timeline_entry id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.timeline_entry ALTER COLUMN id SET DEFAULT nextval('public.timeline_entry_id_seq'::regclass);


--
-- Data for Name: action_request; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.action_request VALUES (1, 1, 'restart-checkout', '{"service": "checkout", "token": "${HOOK_TOKEN}"}', 'containment', 'webhook', 'POST http://127.0.0.1:9/restart', true, 'approved', 'checkout-api down', 'workbench', '2026-03-01 12:03:00+00', '2026-03-01 12:33:00+00', '[{"check": "allowed", "ok": true}]', 'alice', '2026-03-01 12:04:00+00', NULL, 'appr-0001', NULL, NULL, NULL, NULL, NULL, NULL);


--
-- Data for Name: alert; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.alert VALUES (1, 'c0ffee00d15ea5e5', '2026-03-01 12:01:00+00', 'firing', NULL, 'HighErrorRatio', '{"alertname": "HighErrorRatio", "service": "shop", "severity": "critical"}', '{"summary": "error ratio above 5%"}', 'http://prometheus:9090/graph', 'alertmanager-webhook', 'webhook', '2026-03-01 12:01:00+00', '2026-03-01 12:01:00+00', 1, 2, '{"status": "firing", "labels": {"alertname": "HighErrorRatio"}}');


--
-- Data for Name: approval_use; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.approval_use VALUES ('appr-0001', 1, '2026-03-01 12:05:00+00');


--
-- Data for Name: evidence; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.evidence VALUES (1, 1, 1, 1, '2026-03-01 12:00:00+00', 'probe', 'http probe of checkout-api failed: cannot connect', '{"checks": [], "status": null, "duration_ms": 12.5, "error": "cannot connect", "values": {}}');
INSERT INTO public.evidence VALUES (2, 1, 1, 2, '2026-03-01 12:00:30+00', 'probe', 'http probe of checkout-api failed: cannot connect', '{"checks": [], "status": null, "duration_ms": 12.5, "error": "cannot connect", "values": {}}');
INSERT INTO public.evidence VALUES (3, 2, 2, NULL, '2026-03-01 12:01:00+00', 'alert', 'alert HighErrorRatio firing (alertmanager-webhook)', '{"labels": {"alertname": "HighErrorRatio", "service": "shop", "severity": "critical"}, "annotations": {"summary": "error ratio above 5%"}, "starts_at": "2026-03-01T12:01:00+00:00", "ends_at": null, "generator_url": "http://prometheus:9090/graph", "checks": []}');


--
-- Data for Name: finding; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.finding VALUES (1, 'probe:http', 'checkout-api', 'shop', 'warning', 'checkout-api failing: cannot connect', 'shop/checkout-api', '2026-03-01 12:00:30+00', '2026-03-01 12:00:30+00', 2, NULL, 1, '{"kind": "http", "category": "availability", "rule": "probe:http", "target": "checkout-api", "service": "shop", "severity": "warning"}', NULL);
INSERT INTO public.finding VALUES (2, 'alert:HighErrorRatio', 'HighErrorRatio', 'shop', 'critical', 'HighErrorRatio: error ratio above 5%', 'shop/alert:HighErrorRatio', '2026-03-01 12:01:00+00', '2026-03-01 12:01:00+00', 1, NULL, 2, '{"alertname": "HighErrorRatio", "service": "shop", "severity": "critical", "rule": "alert:HighErrorRatio", "target": "HighErrorRatio"}', NULL);


--
-- Data for Name: hypothesis_run; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.hypothesis_run VALUES (1, 1, 'done', 'alice', '2026-03-01 12:06:00+00', '2026-03-01 12:06:00+00', '2026-03-01 12:07:00+00', 'ev-1', '{"hypotheses": [{"cause": "load balancer"}]}', '{"hypotheses": []}', NULL, 1);


--
-- Data for Name: incident; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.incident VALUES (1, 'checkout-api failing: cannot connect', 'observed', 'warning', 'shop', 'shop/checkout-api', '2026-03-01 12:00:30+00', '2026-03-01 12:00:30+00', '2026-03-01 12:00:30+00', NULL, 1);
INSERT INTO public.incident VALUES (2, 'HighErrorRatio: error ratio above 5%', 'observed', 'critical', 'shop', 'shop/alert:HighErrorRatio', '2026-03-01 12:01:00+00', '2026-03-01 12:01:00+00', '2026-03-01 12:01:00+00', NULL, 1);


--
-- Data for Name: ingest_payload; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.ingest_payload VALUES (1, '2026-03-01 12:01:00+00', 'alertmanager-webhook', true, NULL, 1, '{"alerts": []}');


--
-- Data for Name: log_cursor; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.log_cursor VALUES ('app-log', '/var/log/app.log', '2049:131', 5000000000, '2026-03-01 12:01:00+00');


--
-- Data for Name: observation; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.observation VALUES (1, 'checkout-api', 'http', 'shop', false, '2026-03-01 12:00:00+00', 12.5, NULL, 'cannot connect', '[]', '{}');
INSERT INTO public.observation VALUES (2, 'checkout-api', 'http', 'shop', false, '2026-03-01 12:00:30+00', 12.5, NULL, 'cannot connect', '[]', '{}');


--
-- Data for Name: routing_decision; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.routing_decision VALUES (1, '2026-03-01 12:06:00+00', 'workbench', NULL, NULL, NULL, 'hypothesis', 1, 'outage', '["local", "remote"]', 'local', NULL, 'local', 'none', '', '[{"provider": "local", "ok": true}]', 0, 812, 900, 120, 1020, 0);


--
-- Data for Name: rule_state; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.rule_state VALUES ('shop-latency', '{"service":"shop"}', '{"service": "shop"}', 'pending', true, '2026-03-01 12:00:00+00', NULL, NULL, '["2026-03-01T12:00:00+00:00"]', false, 0.75, '2026-03-01 12:00:00+00', NULL);


--
-- Data for Name: schema_version; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.schema_version VALUES (4, '2026-12-02 11:34:02.071649+00', 'created at the latest schema');


--
-- Data for Name: silence; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.silence VALUES (1, 'silence', '[{"name": "service", "op": "=", "value": "search"}]', '2026-03-01 12:00:00+00', '2026-03-01 14:00:00+00', 'null', 'alice', 'search reindex', '2026-03-01 12:00:00+00', NULL, NULL);


--
-- Data for Name: target_state; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.target_state VALUES ('checkout-api', 2, 0, false, '2026-03-01 12:00:30+00', 1);


--
-- Data for Name: timeline_entry; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.timeline_entry VALUES (1, 1, '2026-03-01 12:00:30+00', 'workbench', 'transition', NULL, 'observed', 'opened: checkout-api failing: cannot connect');
INSERT INTO public.timeline_entry VALUES (2, 1, '2026-03-01 12:00:30+00', 'workbench', 'finding', NULL, NULL, 'finding #1 folded in: checkout-api failing: cannot connect');
INSERT INTO public.timeline_entry VALUES (3, 1, '2026-03-01 12:02:00+00', 'alice', 'note', NULL, NULL, 'looking at the load balancer');
INSERT INTO public.timeline_entry VALUES (4, 2, '2026-03-01 12:01:00+00', 'workbench', 'transition', NULL, 'observed', 'opened: HighErrorRatio: error ratio above 5%');
INSERT INTO public.timeline_entry VALUES (5, 2, '2026-03-01 12:01:00+00', 'workbench', 'finding', NULL, NULL, 'finding #2 folded in: HighErrorRatio: error ratio above 5%');
INSERT INTO public.timeline_entry VALUES (6, 1, '2026-03-01 12:03:00+00', 'workbench', 'action', NULL, NULL, 'action request #1 restart-checkout: proposed');


--
-- Name: action_request_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.action_request_id_seq', 1, true);


--
-- Name: alert_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.alert_id_seq', 1, true);


--
-- Name: evidence_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.evidence_id_seq', 3, true);


--
-- Name: finding_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.finding_id_seq', 2, true);


--
-- Name: hypothesis_run_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.hypothesis_run_id_seq', 1, true);


--
-- Name: incident_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.incident_id_seq', 2, true);


--
-- Name: ingest_payload_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.ingest_payload_id_seq', 1, true);


--
-- Name: observation_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.observation_id_seq', 2, true);


--
-- Name: routing_decision_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.routing_decision_id_seq', 1, true);


--
-- Name: schema_version_version_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.schema_version_version_seq', 1, false);


--
-- Name: silence_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.silence_id_seq', 1, true);


--
-- Name: timeline_entry_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.timeline_entry_id_seq', 6, true);


--
-- Name: action_request action_request_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.action_request
    ADD CONSTRAINT action_request_pkey PRIMARY KEY (id);


--
-- Name: alert alert_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert
    ADD CONSTRAINT alert_pkey PRIMARY KEY (id);


--
-- Name: approval_use approval_use_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.approval_use
    ADD CONSTRAINT approval_use_pkey PRIMARY KEY (approval_id);


--
-- Name: evidence evidence_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.evidence
    ADD CONSTRAINT evidence_pkey PRIMARY KEY (id);


--
-- Name: finding finding_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.finding
    ADD CONSTRAINT finding_pkey PRIMARY KEY (id);


--
-- Name: hypothesis_run hypothesis_run_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.hypothesis_run
    ADD CONSTRAINT hypothesis_run_pkey PRIMARY KEY (id);


--
-- Name: incident incident_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.incident
    ADD CONSTRAINT incident_pkey PRIMARY KEY (id);


--
-- Name: ingest_payload ingest_payload_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ingest_payload
    ADD CONSTRAINT ingest_payload_pkey PRIMARY KEY (id);


--
-- Name: log_cursor log_cursor_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.log_cursor
    ADD CONSTRAINT log_cursor_pkey PRIMARY KEY (target);


--
-- Name: observation observation_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.observation
    ADD CONSTRAINT observation_pkey PRIMARY KEY (id);


--
-- Name: routing_decision routing_decision_external_key_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.routing_decision
    ADD CONSTRAINT routing_decision_external_key_key UNIQUE (external_key);


--
-- Name: routing_decision routing_decision_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.routing_decision
    ADD CONSTRAINT routing_decision_pkey PRIMARY KEY (id);


--
-- Name: rule_state rule_state_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.rule_state
    ADD CONSTRAINT rule_state_pkey PRIMARY KEY (rule, "group");


--
-- Name: schema_version schema_version_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_version
    ADD CONSTRAINT schema_version_pkey PRIMARY KEY (version);


--
-- Name: silence silence_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.silence
    ADD CONSTRAINT silence_pkey PRIMARY KEY (id);


--
-- Name: target_state target_state_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.target_state
    ADD CONSTRAINT target_state_pkey PRIMARY KEY (target);


--
-- Name: timeline_entry timeline_entry_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.timeline_entry
    ADD CONSTRAINT timeline_entry_pkey PRIMARY KEY (id);


--
-- Name: alert uq_alert_episode; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert
    ADD CONSTRAINT uq_alert_episode UNIQUE (fingerprint, starts_at);


--
-- Name: ix_action_request_action; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_action_request_action ON public.action_request USING btree (action);


--
-- Name: ix_action_request_incident_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_action_request_incident_id ON public.action_request USING btree (incident_id);


--
-- Name: ix_action_request_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_action_request_status ON public.action_request USING btree (status);


--
-- Name: ix_alert_fingerprint; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_alert_fingerprint ON public.alert USING btree (fingerprint);


--
-- Name: ix_alert_origin; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_alert_origin ON public.alert USING btree (origin);


--
-- Name: ix_evidence_incident_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_evidence_incident_id ON public.evidence USING btree (incident_id);


--
-- Name: ix_finding_correlation_key; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_finding_correlation_key ON public.finding USING btree (correlation_key);


--
-- Name: ix_finding_incident_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_finding_incident_id ON public.finding USING btree (incident_id);


--
-- Name: ix_finding_target; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_finding_target ON public.finding USING btree (target);


--
-- Name: ix_hypothesis_run_incident_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_hypothesis_run_incident_id ON public.hypothesis_run USING btree (incident_id);


--
-- Name: ix_incident_service; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_incident_service ON public.incident USING btree (service);


--
-- Name: ix_incident_state; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_incident_state ON public.incident USING btree (state);


--
-- Name: ix_ingest_payload_received_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_ingest_payload_received_at ON public.ingest_payload USING btree (received_at);


--
-- Name: ix_observation_started_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_observation_started_at ON public.observation USING btree (started_at);


--
-- Name: ix_observation_target; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_observation_target ON public.observation USING btree (target);


--
-- Name: ix_routing_decision_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_routing_decision_at ON public.routing_decision USING btree (at);


--
-- Name: ix_routing_decision_incident_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_routing_decision_incident_id ON public.routing_decision USING btree (incident_id);


--
-- Name: ix_routing_decision_task; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_routing_decision_task ON public.routing_decision USING btree (task);


--
-- Name: ix_timeline_entry_incident_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_timeline_entry_incident_id ON public.timeline_entry USING btree (incident_id);


--
-- Name: uq_incident_open_key; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX uq_incident_open_key ON public.incident USING btree (correlation_key) WHERE (resolved_at IS NULL);


--
-- Name: action_request action_request_incident_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.action_request
    ADD CONSTRAINT action_request_incident_id_fkey FOREIGN KEY (incident_id) REFERENCES public.incident(id);


--
-- Name: alert alert_finding_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert
    ADD CONSTRAINT alert_finding_id_fkey FOREIGN KEY (finding_id) REFERENCES public.finding(id);


--
-- Name: approval_use approval_use_request_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.approval_use
    ADD CONSTRAINT approval_use_request_id_fkey FOREIGN KEY (request_id) REFERENCES public.action_request(id);


--
-- Name: evidence evidence_finding_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.evidence
    ADD CONSTRAINT evidence_finding_id_fkey FOREIGN KEY (finding_id) REFERENCES public.finding(id);


--
-- Name: evidence evidence_incident_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.evidence
    ADD CONSTRAINT evidence_incident_id_fkey FOREIGN KEY (incident_id) REFERENCES public.incident(id);


--
-- Name: evidence evidence_observation_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.evidence
    ADD CONSTRAINT evidence_observation_id_fkey FOREIGN KEY (observation_id) REFERENCES public.observation(id);


--
-- Name: finding finding_incident_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.finding
    ADD CONSTRAINT finding_incident_id_fkey FOREIGN KEY (incident_id) REFERENCES public.incident(id);


--
-- Name: hypothesis_run hypothesis_run_decision_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.hypothesis_run
    ADD CONSTRAINT hypothesis_run_decision_id_fkey FOREIGN KEY (decision_id) REFERENCES public.routing_decision(id);


--
-- Name: hypothesis_run hypothesis_run_incident_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.hypothesis_run
    ADD CONSTRAINT hypothesis_run_incident_id_fkey FOREIGN KEY (incident_id) REFERENCES public.incident(id);


--
-- Name: routing_decision routing_decision_incident_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.routing_decision
    ADD CONSTRAINT routing_decision_incident_id_fkey FOREIGN KEY (incident_id) REFERENCES public.incident(id);


--
-- Name: rule_state rule_state_finding_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.rule_state
    ADD CONSTRAINT rule_state_finding_id_fkey FOREIGN KEY (finding_id) REFERENCES public.finding(id);


--
-- Name: target_state target_state_active_finding_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.target_state
    ADD CONSTRAINT target_state_active_finding_id_fkey FOREIGN KEY (active_finding_id) REFERENCES public.finding(id);


--
-- Name: timeline_entry timeline_entry_incident_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.timeline_entry
    ADD CONSTRAINT timeline_entry_incident_id_fkey FOREIGN KEY (incident_id) REFERENCES public.incident(id);


--
-- PostgreSQL database dump complete
--

\unrestrict UtN6T9Uhc7P40X7O7FVmlCKGGoaWKqYXi9Rp9Uq83nrAA7P9prx2mhsdh7LicOz

