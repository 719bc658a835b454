//! Whole calls through the real engine wiring in virtual time (see `harness`): each
//! scenario used to need a `svi` process, sipp or test phones and real time; here it runs
//! in milliseconds, its deadlines fire in order, and what each party heard is known.

mod harness;

mod callback;
mod dialogs;
mod flow;
mod queue;
mod security;
mod shutdown;
mod supervision;
mod survival;
mod transfer;
