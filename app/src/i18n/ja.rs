//! 日本語の文言。患者さん向けの言葉は、短く、やさしく。

use super::{KindTexts, Texts};

pub static TEXTS: Texts = Texts {
    product: "うけつけ",
    language_name: "日本語",
    switch_language_label: "表示言語を切り替える",
    demo_banner: "デモ・練習用の画面です。実際の受付は行われません。",

    home_title: "医療機関のリンクから開いてください",
    home_body: "この画面は、医療機関が用意したQRコードやリンクから開いて使います。医療機関の案内に従ってください。",

    landing_lead: "マイナンバーカードで保険の資格を確認し、診療に必要な情報を医療機関に提供します。",
    landing_visit_date: "受診日",
    landing_needed_heading: "用意するもの",
    landing_needed_card: "マイナンバーカード（ご本人のもの）",
    landing_needed_pin: "利用者証明用電子証明書の暗証番号（数字4桁）",
    landing_needed_reader: "カードを読み取る方法（対応するカードリーダー、または医療機関の端末）",
    landing_use_heading: "情報の使われ方",
    landing_use_eligibility: "保険の資格情報（氏名・保険者など）が医療機関に提供されます。",
    landing_use_medical: "診療・薬剤情報と特定健診等情報は、あなたが同意したものだけが提供されます。",
    landing_use_window: "医療機関が情報を見られる期間：",
    landing_use_no_medical: "この受付では、診療・薬剤情報などは提供されません（資格の確認のみ）。",
    landing_use_pin: "暗証番号はカードにだけ送られます。このサイトのサーバーには送られず、保存もされません。",
    landing_on_institution_device: "この受付は、医療機関の端末で職員と一緒に行います。",
    landing_how_read_heading: "カードの読み取りについて",
    landing_how_read_body: "パソコンやAndroid端末では、対応するUSBカードリーダー（PaSoRi RC-S380・RC-S300）で読み取れます。読み取れない場合は、医療機関の端末で受付を続けられます。",
    landing_not_accepting_title: "現在この受付は行っていません",
    landing_not_accepting_body: "この医療機関は、現在この方法での受付を行っていません。医療機関にお問い合わせください。",
    landing_not_yet_title: "この受付はまだ使えません",
    landing_not_yet_from: "使える日",
    landing_not_yet_body: "その日になってから、もう一度このページを開いてください。",
    landing_passed_title: "診療日を過ぎています",
    landing_passed_body: "診療日を過ぎたため、この受付は使えません。医療機関にお問い合わせください。",
    loading: "読み込んでいます…",

    invalid_link_title: "このリンクは無効です",
    invalid_link_body: "URLが正しいか確認してください。分からない場合は、医療機関に新しいQRコードまたはリンクをお尋ねください。",
    invalid_link_expired: "このリンクは有効期限が切れています。",
    invalid_link_revoked: "このリンクは医療機関により無効にされています。",
    not_found_title: "ページが見つかりません",
    not_found_body: "URLが正しいか確認してください。",
    server_error_title: "ただいま表示できません",
    server_error_body: "しばらくしてから、もう一度開いてください。",

    kinds: [
        KindTexts {
            title: "オンライン診療等の受付",
            window: "受診日の翌日23時59分まで（取り消すと、その時点で終了）",
        },
        KindTexts {
            title: "外来受付（通常とは異なる動線）",
            window: "受診日の翌日23時59分まで",
        },
        KindTexts {
            title: "受付（機器の故障時など）",
            window: "受診日の翌日23時59分まで",
        },
        KindTexts {
            title: "訪問診療等の受付",
            window: "訪問診療が続いている間（訪問のない月があると終了）",
        },
        KindTexts {
            title: "往診の受付",
            window: "受付から24時間",
        },
        KindTexts {
            title: "資格確認の受付",
            window: "診療・薬剤情報などは提供されません",
        },
    ],
};
