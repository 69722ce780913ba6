//! The chronology page.

use crate::access::Permission;
use crate::chronology::{Kind, Line, HARMFUL_LISTS};
use crate::http::layout::{csrf, layout, when, Viewer};
use crate::store::{PupilRecord, RosterPupil};
use maud::{html, Markup};

/// The pupils on the roster, each with a form to change their names and class and a button
/// to mark them as left.
pub fn roster_page(viewer: &Viewer, pupils: &[RosterPupil], classes: &[String]) -> Markup {
    layout(
        Some(viewer),
        "Pupils",
        html! {
            h1 { "Pupils" }
            p { "Change a pupil's first name, family name or class here; the sign-in screens follow at the next policy. "
                "Devices show the first name and the family name's initial, with more of its first three letters or a number only where classmates share both. "
                "A pupil's key stage is their class's: move them to a class of the other key stage, or change the class under School setup. "
                "Leave the family name empty to keep it (the server keeps only its first three letters, shown in brackets)." }
            p #left-explained { "Marking a pupil as left is not a deletion: they disappear from every device's sign-in screen and the iPad register at the next policy, "
                "while their reports, sessions and chronology stay for the DSL for the leaver period of the retention schedule (90 days unless IT set another); after it only their safeguarding incidents stay, for their own period. "
                "Until then a roster import with their UPN or Adno brings them back." }
            @if !classes.is_empty() {
                section #rollover {
                    h2 { "Year-end rollover" }
                    p { "Move every class up at once: choose each class's next class, or leavers (marked as left, their records kept). "
                        "Pupils keep their ids, so their history follows them. Everything moves together: Year 5 to Year 6 and Year 6 to leavers takes nobody two years." }
                    form method="post" action="/pupils/rollover" {
                        (csrf(viewer))
                        table {
                            @for c in classes {
                                tr {
                                    td { (c) }
                                    td { select name={ "next:" (c) } {
                                        option value="stays" selected { "stays" }
                                        @for other in classes.iter().filter(|o| *o != c) {
                                            option value={ "class:" (other) } { (other) }
                                        }
                                        option value="leaves" { "leavers (marked as left)" }
                                    } }
                                }
                            }
                        }
                        label { input type="checkbox" name="confirm" value="yes"; " Every class's next class is checked" } " "
                        button type="submit" { "Roll over" }
                    }
                }
            }
            @if pupils.is_empty() {
                p.empty { "No pupils yet: import the roster under School setup." }
            } @else {
                table #pupils {
                    thead { tr { th { "Pupil" } th { "Class" } th { "Change" } th { "Left" } } }
                    tbody {
                        @for p in pupils {
                            tr {
                                td {
                                    @if viewer.may(Permission::ReadCaseFile) {
                                        a href={ "/pupils/" (p.id.as_str()) } { (p.name) }
                                    } @else { (p.name) }
                                }
                                td { (p.class_name) }
                                td {
                                    @if let Some(first_name) = &p.first_name {
                                        form method="post" action={ "/pupils/" (p.id.as_str()) "/edit" } {
                                            (csrf(viewer))
                                            label { "First name " input name="first_name" value=(first_name) size="10" required; } " "
                                            label { "Family name " input name="family_name" size="10" autocomplete="off"
                                                placeholder={ "(" (p.family_letters.as_deref().unwrap_or("")) "…)" }; } " "
                                            label { "Class " select name="class" {
                                                @for c in classes {
                                                    option value=(c) selected[*c == p.class_name] { (c) }
                                                }
                                            } } " "
                                            button type="submit" { "Save" }
                                        }
                                    } @else {
                                        span.muted { "entered by hand, not on devices" }
                                    }
                                }
                                td {
                                    form method="post" action={ "/pupils/" (p.id.as_str()) "/leave" } {
                                        (csrf(viewer))
                                        button type="submit" { "Mark as left" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub fn chronology_page(
    viewer: &Viewer,
    pupil: Option<&PupilRecord>,
    id: &str,
    lines: &[Line],
) -> Markup {
    let title = match pupil {
        Some(p) => format!("{} ({})", p.name, p.id),
        None => id.to_owned(),
    };
    let count = |kind: Kind| lines.iter().filter(|l| l.kind == kind).count();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    layout(
        Some(viewer),
        &format!("Chronology: {title}"),
        html! {
            h1 { "Chronology: " (title) }
            @match pupil {
                Some(p) if p.left => p.banner #left { "This pupil has left (marked on the Pupils page): they are on no device; their records are kept for the leaver period of the retention schedule, their safeguarding incidents for their own period." },
                Some(p) => p { "Class " (p.class) "." },
                None => p.banner { "This pupil is no longer on the roster: their records are kept as the retention schedule says." },
            }
            p #summary {
                (plural(count(Kind::Report), "report", "reports")) " with the button, "
                (plural(count(Kind::TellMyTeacher), "\"tell my teacher\"", "\"tell my teacher\"s")) ", "
                (plural(count(Kind::Blocked), "blocked attempt", "blocked attempts")) " in harmful categories, "
                (plural(count(Kind::Session), "session", "sessions")) ", "
                (plural(count(Kind::Agreement), "agreement accepted", "agreements accepted")) "."
            }
            p.muted { "Newest first. Blocked attempts shown are those in the lists " (HARMFUL_LISTS.join(", ")) "; every block is on its device's page." }
            p { a href={ "/pupils/" (id) "/export.csv" } { "Download this chronology (CSV)" } }
            @if lines.is_empty() {
                p.empty #no-entries { "Nothing recorded for this pupil yet." }
            } @else {
                table #chronology {
                    thead { tr { th { "When" } th { "What" } th { "Device" } th { "Details" } } }
                    tbody {
                        @for line in lines {
                            tr {
                                td { (when(line.at)) }
                                td { (line.kind.label()) }
                                td {
                                    @if let Some(device) = line.device {
                                        a href={ "/devices/" (device) } { "Device " (device) }
                                    }
                                }
                                td.url {
                                    @match line.incident {
                                        Some(incident) => a href={ "/incidents/" (incident) } { (line.what) },
                                        None => (line.what),
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
