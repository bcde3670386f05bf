//! Sources: each turns one kind of input into chunks and reports its checkpoint.

pub mod kmsg;
