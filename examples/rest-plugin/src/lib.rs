//! The Rust plugin of docs/tutorial.md: create an item in the example REST
//! API (examples/rest-api.py), read its id from the answer, read it back.
use std::time::Duration;

use gorgon_plugin_api::{export, Recorder};
use serde_json::{json, Value};
use ureq::Agent;

/// Made once per worker thread: a client that keeps its connection alive.
struct Client {
    agent: Agent,
    base: String,
}

fn setup(rec: &Recorder) -> Result<Client, String> {
    let base = rec.param("base").unwrap_or("http://127.0.0.1:8000").to_string();
    let agent: Agent = Agent::config_builder()
        .http_status_as_error(false) // a 404 is a result to count, not an error
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    Ok(Client { agent, base })
}

fn operation(number: u64, rec: &mut Recorder, client: &mut Client) -> String {
    // 1. Create an item and read its id from the JSON answer.
    let created = rec.measure("create", || {
        client
            .agent
            .post(format!("{}/items", client.base))
            .send_json(json!({ "name": format!("item {number}") }))
    });
    let mut created = match created {
        Ok(response) if response.status() == 201 => response,
        Ok(response) => return response.status().as_u16().to_string(),
        Err(error) => return error_kind(&error),
    };
    let Ok(item) = created.body_mut().read_json::<Value>() else {
        return "bad json".to_string();
    };
    let Some(id) = item["id"].as_u64() else {
        return "no id".to_string();
    };

    // 2. Read it back with the id from step 1.
    let fetched = rec.measure("get", || {
        client.agent.get(format!("{}/items/{id}", client.base)).call()
    });
    match fetched {
        Ok(mut response) => {
            // Read the body to its end: only then can the connection be reused.
            let _ = response.body_mut().read_to_vec();
            response.status().as_u16().to_string()
        }
        Err(error) => error_kind(&error),
    }
}

/// A short label for a failed request, so the report groups them.
fn error_kind(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Io(e) => format!("io: {:?}", e.kind()),
        ureq::Error::Timeout(_) => "timeout".to_string(),
        other => format!("error: {other}"),
    }
}

export!(operation, setup = setup);
