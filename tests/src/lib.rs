//! synod-tests: integration tests and the simulate driver.
