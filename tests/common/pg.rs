//! A fresh PostgreSQL database per test, dropped at the end.
//! PostgreSQL is `CERTLAB_TEST_PG_URL` (an admin database, trust auth), else
//! the server on 127.0.0.1:5432; a missing server fails the test.

pub fn pg_base() -> String {
    std::env::var("CERTLAB_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A fresh database for this test, dropped at the end.
pub struct TempDb {
    admin: String,
    pub name: String,
    pub url: String,
}

impl TempDb {
    pub async fn create() -> TempDb {
        let admin = pg_base();
        let name = format!("certlab_e2e_{}", uuid_like());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL is required for this test (CERTLAB_TEST_PG_URL or 127.0.0.1:5432): {e}")
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap();
        TempDb {
            url: format!("{base}/{name}"),
            admin,
            name,
        }
    }

    pub async fn drop_db(self) {
        if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&self.admin).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
        }
    }
}

fn uuid_like() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:x}", t, std::process::id())
}
