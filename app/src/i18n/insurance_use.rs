//! Texts of 健康保険証利用登録 from the done screen (issue 15 §2): the offer, the terms in plain
//! words, the consent, progress and the result, in Japanese and English, and the words for the
//! backend's refusals of the registration.

use super::Lang;

pub struct InsuranceUseTexts {
    /// The done screen: the card is not registered, and it can be here.
    pub offer_title: &'static str,
    pub offer_body: &'static str,
    /// The offer's button (and the terms page's heading).
    pub offer_button: &'static str,
    pub offer_or_desk: &'static str,

    pub terms_title: &'static str,
    pub terms_lead: &'static str,
    pub terms_heading: &'static str,
    /// What registering means, one point each.
    pub terms_points: [&'static str; 6],
    pub terms_version: fn(&str) -> String,
    pub consent_legend: &'static str,
    pub consent_label: &'static str,
    pub consent_hint: &'static str,
    pub card_heading: &'static str,
    pub card_lead: &'static str,
    /// The PIN pad's button.
    pub pin_send: &'static str,
    pub back_to_done: &'static str,
    pub not_offered: &'static str,

    pub pending_title: &'static str,
    pub pending_body: &'static str,
    pub pending_busy: &'static str,
    pub checking_body: &'static str,
    pub registered_title: &'static str,
    pub registered_at: fn(&str) -> String,
    pub registered_found: &'static str,
    pub registered_next: &'static str,
    pub refused_title: &'static str,
    pub try_again: &'static str,
    /// The practice app: what an insurance-use text asks for, and its terms version.
    pub app_purpose: &'static str,
    pub app_terms: &'static str,
}

static JA: InsuranceUseTexts = InsuranceUseTexts {
    offer_title: "このカードは、まだ健康保険証として使えるように登録されていません",
    offer_body: "いま、ここで登録できます（無料・数分）。登録すると、今回の受付でも保険の資格を確認できます。",
    offer_button: "このカードを健康保険証として利用登録する",
    offer_or_desk: "登録しない場合は、今回は窓口で保険証や資格確認書をご提示ください。",

    terms_title: "健康保険証としての利用登録",
    terms_lead: "マイナンバーカードを健康保険証として使えるように登録します。内容を確認して、同意してください。",
    terms_heading: "登録すると、どうなるか",
    terms_points: [
        "このマイナンバーカードを、健康保険証として使えるようになります。オンライン資格確認を行っている医療機関や薬局で、受付のときにカードを使えます。",
        "登録は、この医療機関を通じて、国のシステム（オンライン資格確認等システム）に対して行います。",
        "登録は無料です。一度登録すれば、次からは登録は必要ありません。",
        "加入している健康保険の内容（保険者・負担割合など）は変わりません。",
        "登録には、カードと暗証番号（数字4桁）が必要です。暗証番号はカードにだけ送られ、この医療機関にも送信されません。",
        "登録が終わると、今回の受付の保険の資格をもう一度確認します。",
    ],
    terms_version: |v| format!("利用規約の版：{v}"),
    consent_legend: "同意",
    consent_label: "上の内容を確認し、このカードを健康保険証として利用登録することに同意します",
    consent_hint: "同意すると、カードの読み取りに進めます。",
    card_heading: "カードと暗証番号で登録",
    card_lead: "受付に使ったマイナンバーカードを読み取り、暗証番号（数字4桁）を入力してください。",
    pin_send: "暗証番号を確認して登録する",
    back_to_done: "受付完了の画面に戻る",
    not_offered: "この受付では、いま利用登録は行えません。受付完了の画面をご確認ください。",

    pending_title: "利用登録をしています",
    pending_body: "国のシステムに登録しています。このままお待ちください。",
    pending_busy: "国のシステムの応答が遅れています。登録は、つながり次第行われますので、この画面を閉じてもかまいません。今回は窓口で保険証や資格確認書をご提示ください。",
    checking_body: "登録しました。保険の資格を確認しています。このままお待ちください。",
    registered_title: "健康保険証として利用登録しました",
    registered_at: |at| format!("登録日時：{at}"),
    registered_found: "今回の受付で、保険の資格を確認できました。窓口で保険証を出す必要はありません。",
    registered_next: "次からは、オンライン資格確認を行っている医療機関や薬局で、このカードを健康保険証として使えます。",
    refused_title: "利用登録できませんでした",
    try_again: "もう一度登録する",
    app_purpose: "内容",
    app_terms: "同意する利用規約の版",
};

static EN: InsuranceUseTexts = InsuranceUseTexts {
    offer_title: "This card is not yet registered for use as a health insurance card",
    offer_body: "You can register it here and now (free, a few minutes). Once it is registered, your insurance can be confirmed for this visit too.",
    offer_button: "Register this card as my health insurance card",
    offer_or_desk: "If you do not register, please show your insurance card or eligibility certificate at the desk this time.",

    terms_title: "Registering your card as a health insurance card",
    terms_lead: "This registers your My Number card for use as your health insurance card. Please read the points below and agree.",
    terms_heading: "What registering means",
    terms_points: [
        "This My Number card becomes usable as your health insurance card. You can use it at the reception of any clinic, hospital or pharmacy that checks insurance online.",
        "The registration is made with the national system (the online eligibility confirmation system) through this institution.",
        "Registering is free. You register once; you do not need to do it again.",
        "Your health insurance itself (insurer, co-payment share and so on) does not change.",
        "You need the card and its PIN (4 digits). The PIN goes to the card only; it is not sent to this institution or anyone else.",
        "Once registered, your insurance is checked again for this visit.",
    ],
    terms_version: |v| format!("Terms version: {v}"),
    consent_legend: "Consent",
    consent_label: "I have read the above and agree to register this card for use as my health insurance card",
    consent_hint: "Once you agree, you can go on to read your card.",
    card_heading: "Register with your card and PIN",
    card_lead: "Read the My Number card you used for this reception and enter its PIN (4 digits).",
    pin_send: "Check the PIN and register",
    back_to_done: "Back to your reception",
    not_offered: "Registration is not available for this reception now. Please see your reception's page.",

    pending_title: "Registering your card",
    pending_body: "Registering with the national system. Please wait.",
    pending_busy: "The national system is slow to answer. The registration will be made as soon as it does, so you may close this page. This time, please show your insurance card or eligibility certificate at the desk.",
    checking_body: "Registered. Checking your insurance now. Please wait.",
    registered_title: "Your card is now registered as your health insurance card",
    registered_at: |at| format!("Registered: {at}"),
    registered_found: "Your insurance has been confirmed for this visit. You do not need to show an insurance card at the desk.",
    registered_next: "From now on, you can use this card as your health insurance card at clinics, hospitals and pharmacies that check insurance online.",
    refused_title: "The card could not be registered",
    try_again: "Try registering again",
    app_purpose: "Purpose",
    app_terms: "Version of the terms you agree to",
};

pub fn texts(lang: Lang) -> &'static InsuranceUseTexts {
    match lang {
        Lang::Ja => &JA,
        Lang::En => &EN,
    }
}

/// Why the backend refused the registration, in plain words, with what to do next.
pub fn refusal_message(lang: Lang, code: &str) -> &'static str {
    let (ja, en) = match code {
        "certificate_revoked" => (
            "このカードの電子証明書は、もう使えません（電子証明書を更新した、カードを作り直した、などの場合）。新しいカードで登録するには、そのカードで受付をやり直すか、窓口でご相談ください。今回は窓口で保険証や資格確認書をご提示ください。",
            "This card's certificate is no longer valid (for example, it was renewed or the card was reissued). To register a new card, make a new reception with it, or ask at the desk. This time, please show your insurance card or eligibility certificate at the desk.",
        ),
        "certificate_expired" => (
            "カードの電子証明書の有効期限が切れています。市区町村の窓口で更新してから、登録してください。今回は窓口で保険証や資格確認書をご提示ください。",
            "The card's certificate has expired. Please renew it at your municipal office, then register. This time, please show your insurance card or eligibility certificate at the desk.",
        ),
        "person_under_review" | "under_jlis_review" => (
            "いま、あなたの情報は確認中（J-LIS照会中）のため、登録できません。確認が終わってから、もう一度お試しください。今回は窓口で保険証や資格確認書をご提示ください。",
            "Your information is being checked (J-LIS review), so the card cannot be registered now. Please try again once the check is over. This time, please show your insurance card or eligibility certificate at the desk.",
        ),
        "person_mismatch" | "card_mismatch" => (
            "この受付に使ったカードではありません。受付に使ったカードで登録してください（カードを作り直した場合は、新しいカードで受付をやり直してください）。",
            "This is not the card used for this reception. Please register with the card used for it (if the card was reissued, make a new reception with the new card).",
        ),
        "person_not_found" => (
            "このカードの方の情報が見つかりませんでした。窓口でご相談ください。今回は窓口で保険証や資格確認書をご提示ください。",
            "No record was found for this card. Please ask at the desk. This time, please show your insurance card or eligibility certificate at the desk.",
        ),
        "terms_version_unknown" => (
            "利用規約が新しくなりました。ページを読み込み直して、もう一度お試しください。",
            "The terms have changed. Please reload the page and try again.",
        ),
        "consent_withdrawn" => (
            "この受付の同意は取り消されています。登録は窓口でご相談ください。",
            "The consents of this reception have been withdrawn. Please ask at the desk about registering.",
        ),
        _ => (
            "いまは登録できませんでした。しばらくしてから、もう一度お試しください。今回は窓口で保険証や資格確認書をご提示ください。",
            "The card could not be registered right now. Please try again later. This time, please show your insurance card or eligibility certificate at the desk.",
        ),
    };
    match lang {
        Lang::Ja => ja,
        Lang::En => en,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_words_in_both_languages() {
        for code in [
            "certificate_revoked",
            "certificate_expired",
            "person_under_review",
            "person_mismatch",
            "card_mismatch",
            "person_not_found",
            "terms_version_unknown",
            "unavailable",
        ] {
            assert!(!refusal_message(Lang::Ja, code).is_empty());
            assert_ne!(
                refusal_message(Lang::Ja, code),
                refusal_message(Lang::En, code)
            );
        }
        assert_eq!(
            texts(Lang::Ja).terms_points.len(),
            texts(Lang::En).terms_points.len()
        );
    }
}
