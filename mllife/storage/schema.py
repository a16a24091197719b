"""The store's schema as numbered migrations: append, never edit a released one."""

#: the review desk's state per served input, derived from predictions, ratings and
#: reviews (rebuilt in the transaction that ingests them): how confident the answering
#: models were, whether the models that saw it disagree, its lowest user rating, whether
#: a reviewer has dealt with it, and its need for review (see mllife.review.queue)
REVIEW_INPUTS_SELECT = """
    WITH rated AS (SELECT prediction_id, min(rating) AS rating FROM ratings GROUP BY ALL),
    per_input AS (
        SELECT p.input_hash,
            min(p.confidence) FILTER (WHERE p.answered AND p.role <> 'shadow') AS confidence,
            count(*) FILTER (WHERE p.answered AND p.role <> 'shadow') AS served,
            min(p.predicted) AS min_label, max(p.predicted) AS max_label,
            min(r.rating) FILTER (WHERE p.answered) AS rating,
            max(p.received_at) AS last_served
        FROM predictions p LEFT JOIN rated r USING (prediction_id)
        GROUP BY p.input_hash)
    SELECT *, input_hash IN (SELECT input_hash FROM reviews) AS reviewed,
        (1 - confidence) + 0.5 * (min_label <> max_label)::INTEGER
            + 0.25 * coalesce((5 - rating) / 4.0, 0) AS need
    FROM per_input"""

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE datasets (
        data_version VARCHAR PRIMARY KEY, source VARCHAR, n_files BIGINT, n_rows BIGINT,
        n_dropped BIGINT, n_classes INTEGER, created_at TIMESTAMP);
    CREATE TABLE splits (
        split_version VARCHAR PRIMARY KEY, data_version VARCHAR, seed BIGINT,
        n_train BIGINT, n_validation BIGINT, n_test BIGINT, created_at TIMESTAMP);
    CREATE TABLE models (
        model_hash VARCHAR PRIMARY KEY, name VARCHAR, kind VARCHAR, spec VARCHAR,
        data_version VARCHAR, split_version VARCHAR, artifact_path VARCHAR,
        size_bytes BIGINT, fit_seconds DOUBLE, run_id VARCHAR, created_at TIMESTAMP);
    CREATE TABLE evaluations (
        model_hash VARCHAR, split VARCHAR, split_version VARCHAR, metric VARCHAR,
        value DOUBLE, run_id VARCHAR, created_at TIMESTAMP,
        PRIMARY KEY (model_hash, split, split_version, metric));
    CREATE TABLE confusion (
        model_hash VARCHAR, split VARCHAR, split_version VARCHAR, true_label VARCHAR,
        pred_label VARCHAR, count BIGINT,
        PRIMARY KEY (model_hash, split, split_version, true_label, pred_label));
    CREATE SEQUENCE test_reads_id;
    CREATE TABLE test_reads (
        id BIGINT DEFAULT nextval('test_reads_id') PRIMARY KEY, split_version VARCHAR,
        model_hash VARCHAR, asset VARCHAR, run_id VARCHAR, n_rows BIGINT,
        created_at TIMESTAMP);
    CREATE SEQUENCE deployments_id;
    CREATE TABLE deployments (
        id BIGINT DEFAULT nextval('deployments_id') PRIMARY KEY, action VARCHAR,
        model_hash VARCHAR, previous_hash VARCHAR, name VARCHAR, data_version VARCHAR,
        reason VARCHAR, decision VARCHAR, run_id VARCHAR, created_at TIMESTAMP);
    """,
    # 2: hyperparameter search trials
    """
    CREATE TABLE trials (
        run_id VARCHAR, candidate VARCHAR, trial INTEGER, params VARCHAR, metric VARCHAR,
        score DOUBLE, validation_score DOUBLE, status VARCHAR, error VARCHAR,
        seconds DOUBLE, chosen BOOLEAN, model_hash VARCHAR, data_version VARCHAR,
        split_version VARCHAR, created_at TIMESTAMP);
    """,
    # 3: remembered split assignments, so rows keep their split as data grows. No
    # primary key: maintaining that index on millions of rows cost 10x the insert;
    # writers add only unknown keys (anti-join) inside their single-writer transaction.
    """
    CREATE TABLE split_assignments (
        namespace VARCHAR, key VARCHAR, label VARCHAR, split VARCHAR,
        assigned_at TIMESTAMP);
    """,
    # 4: the known-problems registry: problems, their patterns, and every model version's
    # result on every pattern (cached by model hash x pattern hash)
    """
    CREATE TABLE problems (
        name VARCHAR PRIMARY KEY, description VARCHAR, min_score DOUBLE,
        created_at TIMESTAMP);
    CREATE TABLE patterns (
        problem VARCHAR, pattern_hash VARCHAR, input_path VARCHAR, input_kind VARCHAR,
        expected VARCHAR, kind VARCHAR, source VARCHAR, origin VARCHAR,
        created_at TIMESTAMP, PRIMARY KEY (problem, pattern_hash));
    CREATE TABLE pattern_results (
        model_hash VARCHAR, pattern_hash VARCHAR, predicted VARCHAR, correct BOOLEAN,
        scored_at TIMESTAMP, PRIMARY KEY (model_hash, pattern_hash));
    """,
    # 5: serving: API keys (hashed), the lifecycle's challengers (for shadow and canary
    # rollout), and served predictions and feedback ingested from the server's Parquet
    # segments (each segment once: ingested_segments is the ledger).
    """
    CREATE TABLE api_keys (
        name VARCHAR PRIMARY KEY, key_hash VARCHAR, routes VARCHAR, models VARCHAR,
        created_at TIMESTAMP, revoked_at TIMESTAMP);
    CREATE TABLE challengers (
        run_id VARCHAR, model_hash VARCHAR, name VARCHAR, passed BOOLEAN,
        summary VARCHAR, created_at TIMESTAMP);
    CREATE TABLE predictions (
        prediction_id VARCHAR, request_id VARCHAR, position INTEGER,
        received_at TIMESTAMP, key_name VARCHAR, model_hash VARCHAR, model_name VARCHAR,
        role VARCHAR, answered BOOLEAN, input_hash VARCHAR, features VARCHAR,
        predicted VARCHAR, confidence DOUBLE, latency_ms DOUBLE, segment VARCHAR);
    CREATE TABLE feedback (
        prediction_id VARCHAR, label VARCHAR, key_name VARCHAR, received_at TIMESTAMP,
        segment VARCHAR);
    CREATE TABLE ingested_segments (
        segment VARCHAR PRIMARY KEY, kind VARCHAR, n_rows BIGINT, ingested_at TIMESTAMP);
    """,
    # 6: drift results per monitoring run and scope (new data, served inputs)
    """
    CREATE TABLE drift_results (
        run_id VARCHAR, scope VARCHAR, model_hash VARCHAR, column_name VARCHAR,
        kind VARCHAR, test VARCHAR, statistic DOUBLE, p_adjusted DOUBLE, effect DOUBLE,
        psi DOUBLE, drifted BOOLEAN, dataset_drift BOOLEAN, n_reference BIGINT,
        n_current BIGINT, created_at TIMESTAMP);
    """,
    # 7: staged rollout transitions (staged, promoted, withdrawn), append-only
    """
    CREATE SEQUENCE rollouts_id START 1;
    CREATE TABLE rollouts (
        id BIGINT DEFAULT nextval('rollouts_id') PRIMARY KEY, model_hash VARCHAR,
        name VARCHAR, state VARCHAR, reason VARCHAR, evidence VARCHAR, run_id VARCHAR,
        created_at TIMESTAMP);
    """,
    # 8: the training a trial belongs to (a run and the re-executions that resume it): a
    # step re-executed after its trials were written replaces them instead of adding a
    # second set
    """
    ALTER TABLE trials ADD COLUMN lineage VARCHAR;
    """,
    # 9: requests the server failed to answer (5xx), per model and role: the rollout
    # judge compares error rates
    """
    CREATE TABLE served_failures (
        request_id VARCHAR, received_at TIMESTAMP, key_name VARCHAR, model_hash VARCHAR,
        model_name VARCHAR, role VARCHAR, latency_ms DOUBLE, error VARCHAR,
        segment VARCHAR);
    """,
    # 10: alerts sent (or not) to [alerts] channels, once per key
    """
    CREATE TABLE alerts (
        alert_key VARCHAR PRIMARY KEY, kind VARCHAR, model_hash VARCHAR, text VARCHAR,
        delivered BOOLEAN, error VARCHAR, created_at TIMESTAMP, sent_at TIMESTAMP);
    """,
    # 11: the review desk: users' ratings of served predictions, and what reviewers did
    # with each item (labelled, skipped, added to a known problem), each ingested from
    # the server's segments like feedback
    """
    CREATE TABLE ratings (
        prediction_id VARCHAR, rating TINYINT, comment VARCHAR, key_name VARCHAR,
        received_at TIMESTAMP, segment VARCHAR);
    CREATE TABLE reviews (
        prediction_id VARCHAR, input_hash VARCHAR, action VARCHAR, label VARCHAR,
        problem VARCHAR, reviewer VARCHAR, received_at TIMESTAMP, segment VARCHAR);
    """,
    # 12: the review desk's state per served input (REVIEW_INPUTS_SELECT), so a queue page
    # over a million predictions reads one row per input instead of aggregating them all
    "CREATE TABLE review_inputs AS " + REVIEW_INPUTS_SELECT + ";",
    # 13: what each table column is worth to the challenger (permutation importance on
    # validation, with its interval) and what it costs (input width, preprocessing time),
    # per run: a column worth nothing in two runs in a row is flagged
    """
    CREATE TABLE column_values (
        run_id VARCHAR, model_hash VARCHAR, column_name VARCHAR, importance DOUBLE,
        low DOUBLE, high DOUBLE, width BIGINT, micros_per_row DOUBLE, created_at TIMESTAMP);
    """,
    # 14: what the data checks found in a split version (near-duplicates across and
    # within splits, suspected label errors), for `mllife status`
    """
    CREATE TABLE data_findings (
        split_version VARCHAR, finding VARCHAR, count BIGINT, summary VARCHAR,
        created_at TIMESTAMP, PRIMARY KEY (split_version, finding));
    """,
    # 15: weak spots slice discovery found for a run's challenger on validation: each
    # slice's rule, size, accuracy with its interval and its members (split keys)
    """
    CREATE TABLE slices (
        run_id VARCHAR, number INTEGER, model_hash VARCHAR, description VARCHAR,
        rule VARCHAR, size BIGINT, accuracy DOUBLE, low DOUBLE, high DOUBLE,
        rest_accuracy DOUBLE, p_value DOUBLE, members VARCHAR, created_at TIMESTAMP);
    """,
)
