//! The /dev/kmsg source.
