//! `infra-collector import`.
