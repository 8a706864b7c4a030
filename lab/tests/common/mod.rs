pub mod ipmi_sim;
pub mod sshd;
pub mod sushy;
