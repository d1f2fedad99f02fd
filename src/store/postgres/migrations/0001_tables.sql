-- tierd on PostgreSQL: the tables of format 5.
--
-- Every record column holds the same encoded record the sled engine keeps
-- (src/store/records.rs, postcard); the key columns are plain SQL so that
-- operators can count, look up and delete with psql. Keys sort bytewise
-- (COLLATE "C"), the order the sled engine and the reports use.
-- INT8 everywhere a number is stored: the engines that speak this protocol
-- disagree on what INT means.

-- What a stored record's encoding is (the sled engine's FORMAT_VERSION).
CREATE TABLE tierd_meta (
    name TEXT COLLATE "C" PRIMARY KEY,
    value INT8 NOT NULL
);
INSERT INTO tierd_meta (name, value) VALUES ('record_format', 5);

-- One row per member: its whole state. Writes lock it (FOR UPDATE).
CREATE TABLE tierd_members (
    member_id TEXT COLLATE "C" PRIMARY KEY,
    record BYTEA NOT NULL
);

-- One row per transaction id: the idempotency record of a write.
CREATE TABLE tierd_receipts (
    transaction_id TEXT COLLATE "C" PRIMARY KEY,
    member_id TEXT COLLATE "C" NOT NULL,
    record BYTEA NOT NULL
);

-- Redemptions against an order, per member.
CREATE TABLE tierd_orders (
    member_id TEXT COLLATE "C" NOT NULL,
    order_id TEXT COLLATE "C" NOT NULL,
    record BYTEA NOT NULL,
    PRIMARY KEY (member_id, order_id)
);

-- Tier history. seq is the stream's order across members and nodes
-- (transaction id << 20 | entry within the transaction); member_seq is the
-- member's own count, 1, 2, 3, ... in the order the entries happened.
CREATE TABLE tierd_history (
    seq INT8 PRIMARY KEY,
    member_id TEXT COLLATE "C" NOT NULL,
    member_seq INT8 NOT NULL,
    record BYTEA NOT NULL,
    UNIQUE (member_id, member_seq)
);

-- Every rules version that went live, numbered from 0.
CREATE TABLE tierd_rules_versions (
    n INT8 PRIMARY KEY,
    record BYTEA NOT NULL
);

-- The last history seq each webhook endpoint delivered.
CREATE TABLE tierd_deliveries (
    endpoint TEXT COLLATE "C" PRIMARY KEY,
    seq INT8 NOT NULL
);
