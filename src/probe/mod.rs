pub mod outcome; pub use outcome::*;
