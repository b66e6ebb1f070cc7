//! Emoji render on a stock desktop's fonts (issue 23): the real member
//! window, drawn by Slint's software renderer, shows every emoji the picker
//! offers and the emoji of a received line on a machine with only DejaVu,
//! and on one that also has Noto Color Emoji (a colour font the software
//! renderer draws blank). Each font set-up runs in a child process of this
//! test binary, because fontconfig reads `FONTCONFIG_FILE` once per
//! process; the child draws the window and measures the ink in each emoji's
//! cell: every cell has ink, and no two cells the same pixels (a missing
//! glyph is the same box in every cell). The control: in the Noto set-up,
//! text asked to use Noto Color Emoji itself must come out blank, which
//! shows the measure sees a blank glyph for what it is.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use i_slint_backend_testing::{ElementHandle, ElementRoot, TestingBackend, TestingBackendOptions};
use slint::{ComponentHandle, Rgba8Pixel, SharedPixelBuffer};

// The window the screenshot examples draw (ui/examples/emoji.rs).
#[path = "../examples/support/mod.rs"]
mod support;

const CHILD: &str = "TEAMCHAT_EMOJI_PROBE";
const DEJAVU: &str = "/usr/share/fonts/truetype/dejavu";
const NOTO_COLOR: &str = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf";

/// Runs [`probe`] in a child process whose fontconfig sees only `fonts`.
fn probe_with(fonts: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("fonts.conf");
    let mut xml = String::from(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE fontconfig SYSTEM \"urn:fontconfig:fonts.dtd\">\n<fontconfig>\n",
    );
    for f in fonts {
        let p = Path::new(f);
        if p.is_dir() {
            xml += &format!("  <dir>{f}</dir>\n");
        } else {
            // One file: its folder is listed, with everything else in it
            // left out.
            let parent = p.parent().unwrap().display();
            let name = p.file_name().unwrap().to_string_lossy();
            xml += &format!(
                "  <dir>{parent}</dir>\n  <selectfont><rejectfont><glob>{parent}/*</glob></rejectfont><acceptfont><glob>{parent}/{name}</glob></acceptfont></selectfont>\n"
            );
        }
    }
    // As a stock desktop's fontconfig: sans-serif is DejaVu Sans.
    xml += "  <alias><family>sans-serif</family><prefer><family>DejaVu Sans</family></prefer></alias>\n";
    xml += &format!(
        "  <cachedir>{}</cachedir>\n</fontconfig>\n",
        dir.path().join("cache").display()
    );
    std::fs::write(&conf, xml).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "probe",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FONTCONFIG_FILE", &conf)
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the probe failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The probe's lines `ink <what> <pixels>`.
fn inks(out: &str) -> Vec<(String, usize)> {
    out.lines()
        .filter_map(|l| {
            let mut w = l[l.find("ink ")? + 4..].rsplitn(2, ' ');
            let n = w.next()?.parse().ok()?;
            Some((w.next()?.to_string(), n))
        })
        .collect()
}

/// The probe's lines `mask <what> <hash>`: each picker cell's ink pattern.
fn masks(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let mut w = l[l.find("mask ")? + 5..].rsplitn(2, ' ');
            let hash = w.next()?.to_string();
            Some((w.next()?.to_string(), hash))
        })
        .collect()
}

fn assert_all_drawn(out: &str) {
    // Each emoji draws its own glyph: a missing one would be the font's
    // "missing glyph" box, the same in every cell it is missing from.
    let masks = masks(out);
    assert_eq!(masks.len(), 24, "every picker cell measured:\n{out}");
    let mut seen = std::collections::HashMap::new();
    for (what, hash) in &masks {
        if let Some(other) = seen.insert(hash.clone(), what.clone()) {
            panic!("{what} and {other} draw the same pixels (a missing-glyph box?):\n{out}");
        }
    }
    let inks = inks(out);
    let drawn: Vec<_> = inks
        .iter()
        .filter(|(w, _)| !w.starts_with("control"))
        .collect();
    assert!(drawn.len() >= 25, "the probe measured too little:\n{out}");
    assert!(
        drawn.iter().any(|(w, _)| w == "line"),
        "no received line measured:\n{out}"
    );
    let blank: Vec<_> = drawn.iter().filter(|(_, n)| *n < 20).collect();
    assert!(blank.is_empty(), "emoji drawn blank: {blank:?}\n{out}");
}

#[test]
fn emoji_render_with_only_dejavu() {
    assert!(
        Path::new(DEJAVU).is_dir(),
        "{DEJAVU} is missing (Debian's fonts-dejavu-core)"
    );
    assert_all_drawn(&probe_with(&[DEJAVU]));
}

#[test]
fn emoji_render_with_noto_color_emoji_installed() {
    assert!(
        Path::new(NOTO_COLOR).is_file(),
        "{NOTO_COLOR} is missing: install Debian's fonts-noto-color-emoji (.ci/run does)"
    );
    let out = probe_with(&[DEJAVU, NOTO_COLOR]);
    assert_all_drawn(&out);
    let control = inks(&out)
        .into_iter()
        .find(|(w, _)| w == "control Noto Color Emoji")
        .unwrap_or_else(|| panic!("no control in:\n{out}"));
    assert!(
        control.1 < 20,
        "the control (text in Noto Color Emoji itself) was not blank, so the measure cannot tell: {control:?}"
    );
}

/// Which pixels of a rectangle, row by row, are far from the colour at its
/// top-left corner (the background there).
fn far(
    shot: &SharedPixelBuffer<Rgba8Pixel>,
    pos: slint::LogicalPosition,
    size: slint::LogicalSize,
) -> Vec<bool> {
    let (w, h) = (shot.width() as usize, shot.height() as usize);
    let px = shot.as_slice();
    let x0 = (pos.x.max(0.) as usize).min(w);
    let y0 = (pos.y.max(0.) as usize).min(h);
    let x1 = ((pos.x + size.width) as usize).min(w);
    let y1 = ((pos.y + size.height) as usize).min(h);
    if x0 >= x1 || y0 >= y1 {
        return Vec::new();
    }
    let bg = px[y0 * w + x0];
    let d = |a: u8, b: u8| i32::from(a).abs_diff(i32::from(b));
    (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
        .map(|(x, y)| {
            let p = px[y * w + x];
            d(p.r, bg.r) + d(p.g, bg.g) + d(p.b, bg.b) > 120
        })
        .collect()
}

/// The pattern of ink in a rectangle, as a hash.
fn mask(
    shot: &SharedPixelBuffer<Rgba8Pixel>,
    pos: slint::LogicalPosition,
    size: slint::LogicalSize,
) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    far(shot, pos, size).hash(&mut hasher);
    hasher.finish()
}

/// Ink in a rectangle, 2 pixels in from its edges (clear of a cell's
/// border): the pixels far from the background.
fn ink(
    shot: &SharedPixelBuffer<Rgba8Pixel>,
    pos: slint::LogicalPosition,
    size: slint::LogicalSize,
) -> usize {
    let inner = slint::LogicalPosition::new(pos.x + 2., pos.y + 2.);
    let size = slint::LogicalSize::new(size.width - 4., size.height - 4.);
    far(shot, inner, size).into_iter().filter(|f| *f).count()
}

slint::slint! {
    // Text asked to use Noto Color Emoji itself: what a window shows when
    // that font is picked for an emoji.
    export component Control inherits Window {
        width: 120px;
        height: 60px;
        background: white;
        Text { text: "😀🚀"; font-family: "Noto Color Emoji"; font-size: 32px; color: black; }
    }
}

#[test]
#[ignore = "run by the two tests above, in a child process with its own fonts"]
fn probe() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    slint::platform::set_platform(Box::new(TestingBackend::new(TestingBackendOptions {
        mock_time: true,
        threading: false,
        renderer_name: Some("software".into()),
    })))
    .unwrap();
    let demo = support::Demo::new().unwrap();
    let w = &demo.app.window;
    // A received line that starts with an emoji.
    demo.bob_says("🚀 shipped", 1, 0);
    w.show().unwrap();
    let button = ElementHandle::find_by_accessible_label(w, "Insert emoji")
        .next()
        .expect("the emoji button");
    button.invoke_accessible_default_action();
    slint::platform::update_timers_and_animations();
    let shot = w.window().take_snapshot().unwrap();
    let labelled = |prefix: &'static str| {
        w.root_element()
            .query_descendants()
            .match_predicate(move |e| e.accessible_label().is_some_and(|l| l.starts_with(prefix)))
            .find_all()
    };
    let cells = labelled("Emoji ");
    for cell in &cells {
        let label = cell.accessible_label().unwrap();
        println!(
            "ink {label} {}",
            ink(&shot, cell.absolute_position(), cell.size())
        );
        println!(
            "mask {label} {:x}",
            mask(&shot, cell.absolute_position(), cell.size())
        );
    }
    // The received line: the first emoji of its text row, at the bubble's
    // left (row padding 12 + bubble padding 10) and bottom (3 + 6), clear
    // of the sender's name above it.
    for line in labelled("bob at ") {
        let (p, s) = (line.absolute_position(), line.size());
        let at = slint::LogicalPosition::new(p.x + 20., p.y + s.height - 30.);
        println!(
            "ink line {}",
            ink(&shot, at, slint::LogicalSize::new(26., 23.))
        );
    }
    let control = Control::new().unwrap();
    control.show().unwrap();
    let c = control.window().take_snapshot().unwrap();
    println!(
        "ink control Noto Color Emoji {}",
        ink(
            &c,
            slint::LogicalPosition::new(0., 0.),
            slint::LogicalSize::new(120., 60.)
        )
    );
}
