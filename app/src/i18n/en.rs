//! English texts: plain words for patients who do not read Japanese.

use super::{KindTexts, Texts};

pub static TEXTS: Texts = Texts {
    product: "Uketsuke",
    language_name: "English",
    switch_language_label: "Change the display language",
    demo_banner: "Demo and practice screens. No real reception takes place.",

    home_title: "Please open this from your clinic's link",
    home_body: "This site is opened from a QR code or link given by your medical institution. Please follow their instructions.",

    landing_lead: "Confirm your health insurance with your My Number Card and share the information your care needs with the institution.",
    landing_visit_date: "Visit date",
    landing_needed_heading: "What you need",
    landing_needed_card: "Your own My Number Card",
    landing_needed_pin: "The 4-digit PIN of the card's user certificate (利用者証明用電子証明書)",
    landing_needed_reader: "A way to read the card (a supported card reader, or the institution's device)",
    landing_use_heading: "How your information is used",
    landing_use_eligibility: "Your insurance details (name, insurer and so on) are given to the institution.",
    landing_use_medical: "Your medical and medication history and health check-up results are given only if you agree.",
    landing_use_window: "The institution can see them:",
    landing_use_no_medical: "This reception shares no medical information (insurance check only).",
    landing_use_pin: "Your PIN goes only to your card. It is never sent to this site's server and never stored.",
    landing_on_institution_device: "This reception is done on the institution's device, together with staff.",
    landing_how_read_heading: "Reading your card",
    landing_how_read_body: "On a computer or an Android device, a supported USB card reader (PaSoRi RC-S380 or RC-S300) can read the card. If yours cannot, you can finish at the institution's device.",
    landing_not_accepting_title: "This reception is not available now",
    landing_not_accepting_body: "This institution does not accept this kind of reception at the moment. Please contact them.",
    landing_not_yet_title: "This reception cannot be used yet",
    landing_not_yet_from: "Usable from",
    landing_not_yet_body: "Please open this page again on or after that day.",
    landing_passed_title: "The visit date has passed",
    landing_passed_body: "The visit date has passed, so this reception can no longer be used. Please contact the institution.",
    loading: "Loading…",

    invalid_link_title: "This link is not valid",
    invalid_link_body: "Please check the address. If you are unsure, ask the institution for a new QR code or link.",
    invalid_link_expired: "This link has expired.",
    invalid_link_revoked: "The institution has withdrawn this link.",
    not_found_title: "Page not found",
    not_found_body: "Please check the address.",
    server_error_title: "This page cannot be shown right now",
    server_error_body: "Please try again in a little while.",

    kinds: [
        KindTexts {
            title: "Online consultation",
            window: "until 23:59 on the day after your visit (or until you cancel)",
        },
        KindTexts {
            title: "Outpatient visit (separate route)",
            window: "until 23:59 on the day after your visit",
        },
        KindTexts {
            title: "Reception (when the clinic's reader is out of order)",
            window: "until 23:59 on the day after your visit",
        },
        KindTexts {
            title: "Regular home visits",
            window: "while home visits continue (ends after a calendar month with no visit)",
        },
        KindTexts {
            title: "House call",
            window: "for 24 hours from reception",
        },
        KindTexts {
            title: "Insurance check only",
            window: "no medical information is shared",
        },
    ],
};
