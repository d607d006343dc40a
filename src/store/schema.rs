// The portable schema, shared by every backend (see migrations/).

diesel::table! {
    exchanges (id) {
        id -> Text,
        time_us -> BigInt,
        outcome -> Text,
        error -> Nullable<Text>,
        reason -> Text,
        client_id -> Nullable<Text>,
        subject_issuer -> Nullable<Text>,
        subject -> Nullable<Text>,
        subject_jti -> Nullable<Text>,
        actor_issuer -> Nullable<Text>,
        actor -> Nullable<Text>,
        requested_audiences -> Text,
        requested_resources -> Text,
        requested_scopes -> Text,
        granted_audiences -> Text,
        granted_scopes -> Text,
        rule -> Nullable<Text>,
        token_jti -> Nullable<Text>,
        expires_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        remote_addr -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        request_id -> Text,
        duration_us -> BigInt,
        chain -> Text,
        seq -> BigInt,
        prev_hash -> Text,
        hash -> Text,
        subject_until_us -> Nullable<BigInt>,
        actor_jti -> Nullable<Text>,
        count -> BigInt,
        truncated -> Bool,
    }
}

diesel::table! {
    audit_chains (chain) {
        chain -> Text,
        created_us -> BigInt,
        head_seq -> BigInt,
        head_hash -> Text,
        anchor_seq -> BigInt,
        anchor_hash -> Text,
    }
}

diesel::table! {
    used_jtis (kind, jti) {
        kind -> Text,
        jti -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    store_probes (chain) {
        chain -> Text,
        probed_us -> BigInt,
        padding -> Text,
    }
}

diesel::table! {
    subject_tokens (subject_jti, subject_issuer, subject) {
        subject_jti -> Text,
        subject_issuer -> Text,
        subject -> Text,
        first_us -> BigInt,
        until_us -> BigInt,
    }
}

diesel::table! {
    revocations (kind, issuer, value) {
        kind -> Text,
        issuer -> Text,
        value -> Text,
        revoked_at -> BigInt,
        until_s -> BigInt,
    }
}

diesel::table! {
    exchange_kinds (id) {
        id -> Text,
        token_type -> Text,
        txn -> Nullable<Text>,
        grant_type -> Nullable<Text>,
        grant_kind -> Nullable<Text>,
    }
}

diesel::table! {
    txn_replacements (txn) {
        txn -> Text,
        count -> BigInt,
        until_s -> BigInt,
    }
}

diesel::table! {
    console_actions (id) {
        id -> Text,
        time_us -> BigInt,
        who -> Text,
        role -> Text,
        action -> Text,
        target -> Text,
        result -> Text,
    }
}

diesel::table! {
    exchange_minutes (minute, chain) {
        minute -> BigInt,
        chain -> Text,
        granted -> BigInt,
        denied -> BigInt,
    }
}

diesel::table! {
    exchange_tallies (bucket, chain, outcome, error, client_id, audience) {
        bucket -> BigInt,
        chain -> Text,
        outcome -> Text,
        error -> Text,
        client_id -> Text,
        audience -> Text,
        count -> BigInt,
    }
}

diesel::joinable!(exchange_kinds -> exchanges (id));
diesel::allow_tables_to_appear_in_same_query!(exchanges, exchange_kinds);
