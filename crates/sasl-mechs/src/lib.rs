//! SASL client mechanisms over raw bytes, for any protocol.
