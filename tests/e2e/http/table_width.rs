//! The HTTP plugin's table in 80 columns: statuses and named requests as
//! labels, with compact durations, in a log or a pipe (stdout is not a
//! terminal here).

use super::requests_file;
use super::server::TestServer;
use crate::support::{plugin, Gorgon};

#[test]
fn the_table_of_a_flow_fits_in_80_columns() {
    let server = TestServer::start();
    let text = "\
### create the user account with a long request name
POST {{base}}/status/201
Content-Type: text/plain

hello

### get
GET {{base}}/mod/4/{number}
";
    let file = requests_file("flow.http", text);
    let run = Gorgon::run(plugin("gorgon-http"))
        .set("requests", file.path.display())
        .set("base", server.base())
        .args(["-n", "2000", "-p", "2", "-t", "8"])
        .output_format("table")
        .narrow()
        .output();
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    let table: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with(['┌', '│', '╞', '└']))
        .collect();
    assert!(table.len() >= 8, "{}", run.stdout);
    for line in &table {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line}\n{}",
            line.chars().count(),
            run.stdout
        );
    }
    assert!(
        table
            .iter()
            .any(|l| l.starts_with("│ create the") && l.contains('…')),
        "a long request name is shortened: {}",
        run.stdout
    );
    // Every figure of the table is still there, in compact units.
    let all = table.iter().find(|l| l.starts_with("│ all ")).unwrap();
    let cells: Vec<&str> = all.split(['│', '┆']).map(str::trim).collect();
    assert_eq!(cells[2], "2,000", "{all}");
    for cell in &cells[4..] {
        if cell.is_empty() {
            continue;
        }
        assert!(!cell.contains(' '), "one unit per duration: {all}");
    }
}
