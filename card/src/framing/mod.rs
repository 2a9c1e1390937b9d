//! Reader framings: pure encode/decode of the bytes a USB reader exchanges, plus the ISO-DEP
//! block protocol they share. No USB API here; see [`crate::transport::UsbBulk`].
pub mod isodep;
pub mod rcs300;
pub mod rcs380;
