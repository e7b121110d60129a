//! Probe: the operations a `mongod` has served so far (`serverStatus().opcounters`: query,
//! insert, update, delete), for the bench's operations per request. Usage: `mongo_ops URL`.
use tower_sessions_mongodb_store::mongodb::{bson::doc, Client};

#[tokio::main]
async fn main() {
    let url = std::env::args().nth(1).expect("MONGODB_URL");
    let client = Client::with_uri_str(&url).await.expect("a MongoDB client");
    let status = client
        .database("admin")
        .run_command(doc! { "serverStatus": 1 }, None)
        .await
        .expect("serverStatus");
    let counters = status.get_document("opcounters").expect("opcounters");
    let total: i64 = ["query", "insert", "update", "delete"]
        .iter()
        .map(|name| match counters.get(*name) {
            Some(tower_sessions_mongodb_store::mongodb::bson::Bson::Int32(n)) => i64::from(*n),
            Some(tower_sessions_mongodb_store::mongodb::bson::Bson::Int64(n)) => *n,
            _ => 0,
        })
        .sum();
    println!("{total}");
}
