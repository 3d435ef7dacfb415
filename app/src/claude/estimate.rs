//! Offline token estimation, modelled on the tokenizer of the Claude 5 models as ctok (an
//! offline reconstruction of it, family "4.8") counts: a small vocabulary that marks where
//! words begin and end. So a text costs, roughly in order of weight:
//! - a word: one token if common (a list of about 740 English, real-estate, finance and code
//!   words and European function words, with the exact count of those the length rule would
//!   miss), otherwise about two, plus one per three letters beyond six; a capital adds one,
//!   an all-capital word is spelled out at about 0.7 token a letter;
//! - digits in groups of three; punctuation by its common pieces (`",`, `**`, `---`); a space
//!   between two words nothing, any other run of whitespace one token; a Chinese, Japanese or
//!   Korean character about one.
//! Calibrated per model and operation by the gateway it is within 2% of Claude's count on
//! average on the deal text of `bench/estimate/` (`calibrated_estimates_match_claude_on_deal_text`).
//! Pure, integer and free of allocation, so the browser runs the very same code for the
//! pre-flight estimate.

/// Tokens added per message for its role and framing.
pub const PER_MESSAGE_TOKENS: u64 = 4;
/// Tokens added once per request for its framing: with one message, the six tokens
/// Claude 5 counts around a single user message.
pub const PER_REQUEST_TOKENS: u64 = 2;

/// Estimated tokens of one text.
pub fn estimate_text_tokens(text: &str) -> u64 {
    // Tenths of a token keep the arithmetic in integers, identical in wasm and native.
    let mut tenths = 0;
    let mut language = Language::English;
    let (mut before, mut previous) = (None, None);
    let mut runs = Runs { rest: text }.peekable();
    while let Some(run) = runs.next() {
        tenths += run_tenths(run, previous, before, runs.peek().copied(), &mut language);
        (before, previous) = (previous, Some(run));
    }
    tenths.div_ceil(10)
}

/// What a character is to the tokenizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Letter,
    Digit,
    Punct,
    Space,
    Tab,
    Newline,
    /// A Chinese, Japanese or Korean ideograph or Hangul syllable: no word model, one piece.
    Ideograph,
    /// Any other character outside words: a symbol, an emoji.
    Symbol,
    /// A control character, which the API strips.
    Control,
}

/// Non-ASCII symbols that join punctuation's pieces rather than standing alone.
const PUNCT_SYMBOLS: &str = "£§«°·»–—„†•…€№→−√─│└═█（";

fn class(c: char) -> Class {
    match c {
        ' ' | '\0' => Class::Space,
        '\t' => Class::Tab,
        '\n' | '\r' => Class::Newline,
        _ if c.is_ascii_control() => Class::Control,
        _ if c.is_ascii_alphabetic() => Class::Letter,
        _ if c.is_ascii_digit() => Class::Digit,
        _ if c.is_ascii() => Class::Punct,
        _ if PUNCT_SYMBOLS.contains(c) => Class::Punct,
        _ if c.is_whitespace() => Class::Space,
        _ if is_ideograph(c) => Class::Ideograph,
        _ if c.is_alphabetic() && (c as u32) < 0x10000 => Class::Letter,
        _ if c.is_control() => Class::Control,
        _ => Class::Symbol,
    }
}

fn is_ideograph(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0xAC00..=0xD7A3)
}

/// A run of characters of one class; ideographs and symbols are runs of one.
#[derive(Clone, Copy, Debug)]
struct Run<'a> {
    class: Class,
    text: &'a str,
}

impl Run<'_> {
    fn chars(&self) -> u64 {
        self.text.chars().count() as u64
    }
}

struct Runs<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Runs<'a> {
    type Item = Run<'a>;

    fn next(&mut self) -> Option<Run<'a>> {
        let mut chars = self.rest.char_indices();
        let (_, first) = chars.next()?;
        let class = class(first);
        let end = match class {
            Class::Ideograph | Class::Symbol => first.len_utf8(),
            _ => chars.find(|&(_, c)| self::class(c) != class).map_or(self.rest.len(), |(i, _)| i),
        };
        let (text, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(Run { class, text })
    }
}

/// Tenths of a token one run costs, given its neighbours.
fn run_tenths(run: Run, previous: Option<Run>, before: Option<Run>, next: Option<Run>, language: &mut Language) -> u64 {
    let class_of = |r: Option<Run>| r.map(|r| r.class);
    let per_piece = |size: u64| 10 * run.chars().div_ceil(size);
    match run.class {
        // `'s`, `'t`, `'ll` after a word are one token with the apostrophe.
        Class::Letter if previous.is_some_and(|p| p.text == "'") && class_of(before) == Some(Class::Letter)
            && ["s", "t", "d", "m", "ll", "re", "ve"].contains(&run.text) => 0,
        Class::Letter => word_tenths(run.text, language),
        Class::Digit => per_piece(3),
        Class::Punct => punct_tenths(
            run.text,
            previous.is_some_and(|p| p.class == Class::Space),
            next.is_some_and(|n| n.class == Class::Space && n.text.chars().count() == 1),
        ),
        // A single space between two words (or punctuation) is part of the word boundary.
        Class::Space
            if run.text.chars().count() == 1
                && matches!(class_of(previous), Some(Class::Letter | Class::Punct))
                && matches!(class_of(next), Some(Class::Letter | Class::Punct)) => 0,
        // The message's frame already ends in newlines.
        Class::Newline if next.is_none() => 0,
        Class::Space | Class::Tab | Class::Newline => per_piece(16),
        Class::Ideograph => if matches!(run.text.chars().next(), Some('\u{AC00}'..='\u{D7A3}')) { 10 } else { 11 },
        Class::Symbol => if run.text.len() <= 3 && is_common_symbol(run.text) { 10 } else { 20 },
        Class::Control => 0,
    }
}

fn is_common_symbol(symbol: &str) -> bool {
    symbol.chars().all(|c| matches!(c as u32, 0x80..=0x7FF | 0x2000..=0x22FF | 0x2500..=0x259F | 0x3000..=0x303F | 0xFF00..=0xFFEF))
}

/// The language the latest function word was in: words outside the list cost more in
/// German or Dutch (long compounds) and French, Spanish or Italian than in English.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Language {
    English,
    Germanic,
    Romance,
}

/// Tenths of a token of a word, one case hump at a time (`warnRatio` is `warn` + `Ratio`).
fn word_tenths(word: &str, language: &mut Language) -> u64 {
    let mut tenths = 0;
    let mut start = 0;
    let mut after_lowercase = false;
    for (i, c) in word.char_indices() {
        if c.is_uppercase() && after_lowercase {
            tenths += hump_tenths(&word[start..i], language);
            start = i;
        }
        after_lowercase = c.is_lowercase();
    }
    tenths + hump_tenths(&word[start..], language)
}

fn hump_tenths(hump: &str, language: &mut Language) -> u64 {
    let letters = hump.chars().count() as u64;
    let capitals = hump.chars().filter(|c| c.is_uppercase()).count() as u64;
    if capitals == letters {
        // The tokenizer has no all-capitals marker: `NOI` is `N`, `O`, `I`.
        return if letters == 1 { 10 } else { 7 + 7 * letters };
    }
    let capitalized = capitals == 1 && hump.starts_with(char::is_uppercase);
    let listed = listed_word(hump);
    let tenths = match listed {
        Some(Listed::Function(of)) => {
            *language = of;
            10
        }
        Some(Listed::Tokens(tokens)) => {
            *language = Language::English;
            10 * tokens
        }
        Some(Listed::OneEvenCapitalized) => {
            *language = Language::English;
            return 10;
        }
        None => unlisted_word_tenths(hump, letters, *language),
    };
    tenths
        + match (capitalized, listed) {
            // A capital is a marker of its own; a mid-word one breaks the word up.
            (true, Some(_)) => 10,
            // Capitalized words not in the list are mostly names, rarer than other words.
            (true, None) => 13,
            (false, _) => 10 * capitals,
        }
}

fn unlisted_word_tenths(word: &str, letters: u64, language: Language) -> u64 {
    /// Tenths of a token of an English word outside the list, by its letters.
    const BY_LENGTH: [u64; 14] = [0, 10, 19, 20, 20, 21, 23, 24, 26, 29, 31, 36, 39, 42];
    let beyond_latin = word.chars().filter(|&c| !(c < '\u{250}' || ('\u{1E00}'..='\u{1EFF}').contains(&c))).count() as u64;
    let tenths = if !word.is_ascii() {
        // Accented Latin letters split words more; other scripts cost nearly a token a letter.
        9 * (letters - beyond_latin) / 2 + 9 * beyond_latin
    } else if letters >= 3 && !word.contains(['a', 'e', 'i', 'o', 'u', 'y', 'A', 'E', 'I', 'O', 'U', 'Y']) {
        // No vowel, no syllable: `rsf`, `ltv`, `sqft` are spelled out like capitals.
        7 + 7 * letters
    } else {
        match language {
            Language::English => BY_LENGTH.get(letters as usize).copied().unwrap_or_else(|| 42 + 4 * (letters - 13)),
            Language::Germanic => 5 + 5 * letters,
            Language::Romance => 5 + 7 * letters / 2,
        }
    };
    tenths.max(10)
}

/// What the word list says of a word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listed {
    /// That many tokens, lowercase; a capital adds one.
    Tokens(u64),
    /// One token, capitalized too (`The`, `October`).
    OneEvenCapitalized,
    /// One token, and a sign of the language (`der`, `und`, `les`, `para`).
    Function(Language),
}

fn listed_word(word: &str) -> Option<Listed> {
    let group = WORD_TABLE.get(word.len())?;
    // Records are the word, its tag and a space.
    let tag = find(group, word.len() + 2, word)?;
    Some(match tag {
        b'0' => Listed::OneEvenCapitalized,
        b'g' => Listed::Function(Language::Germanic),
        b'r' => Listed::Function(Language::Romance),
        digit => Listed::Tokens(u64::from(digit - b'0')),
    })
}

/// Binary search of a group of same-length records, `stride` bytes each, for `key`
/// (compared with ASCII capitals lowered); the byte after the key in the found record.
fn find(group: &str, stride: usize, key: &str) -> Option<u8> {
    let group = group.as_bytes();
    let (mut low, mut high) = (0, group.len() / stride);
    while low < high {
        let middle = (low + high) / 2;
        let record = &group[middle * stride..(middle + 1) * stride];
        match record[..key.len()].iter().copied().cmp(key.bytes().map(|b| b.to_ascii_lowercase())) {
            std::cmp::Ordering::Less => low = middle + 1,
            std::cmp::Ordering::Greater => high = middle,
            std::cmp::Ordering::Equal => return Some(record[key.len()]),
        }
    }
    None
}

/// Tenths of a token of a run of punctuation, tiled greedily by the tokenizer's punctuation
/// pieces. Where it touches a space the tokenizer marks the boundary, and only a few pieces
/// hold that marker: `bow` (a space before) and `eow` (one space after) limit the end pieces.
fn punct_tenths(run: &str, bow: bool, eow: bool) -> u64 {
    const WITH_SPACE_BEFORE: &str = "!= \"\"\" && () ); ** */ += -- // /> := </ << == === => [] __ || }) }); }, };";
    const WITH_SPACE_AFTER: &str = "\") \", \". \": ## ### ') ', ': () ), ). ): ); ** ,\" .\" ., ... // == ># ],";
    // The longest of the candidates (two or three characters) at one end of `rest`, else its end character.
    let end_piece = |candidates: &str, at_start: bool, rest: &str| {
        let piece = |n: usize| if at_start { rest.get(..n) } else { rest.get(rest.len() - n..) };
        (2..=rest.len().min(3))
            .rev()
            .find(|&n| piece(n).is_some_and(|p| candidates.split(' ').any(|c| c == p)))
            .unwrap_or_else(|| if at_start { rest.chars().next() } else { rest.chars().next_back() }.map_or(1, char::len_utf8))
    };
    let mut rest = run;
    let mut pieces = 0;
    if bow && rest.len() > 1 {
        let n = end_piece(WITH_SPACE_BEFORE, true, rest);
        rest = &rest[n..];
        pieces += 1;
    }
    if eow && rest.len() > 1 {
        let n = end_piece(WITH_SPACE_AFTER, false, rest);
        rest = &rest[..rest.len() - n];
        pieces += 1;
    }
    while !rest.is_empty() {
        let longest = (2..=rest.len().min(PUNCT_TABLE.len() - 1))
            .rev()
            .find(|&n| rest.get(..n).is_some_and(|piece| find(PUNCT_TABLE[n], n + 1, piece).is_some()))
            .unwrap_or(rest.chars().next().map_or(1, char::len_utf8));
        rest = &rest[longest..];
        pieces += 1;
    }
    10 * pieces
}

/// Words the length rule would misprice, lowercase, by length in bytes: entry `n` holds the
/// `n`-byte words, sorted, each followed by a tag and a space. Tags: `1` to `6`, the word's
/// tokens; `0`, one token even capitalized; `g`, `r`, a one-token function word of a
/// Germanic or Romance language. Counts from ctok (`bench/estimate/`); the words are common
/// English, real-estate, finance and code words, and European function words.
const WORD_TABLE: [&str; 16] = [
    "",
    "a0 i0 o0 yr ",
    "alr am1 an0 as0 at0 aur be1 by0 da1 de0 di1 do1 dur elr em1 enr er1 es1 etr go1 he0 id1 if0 \
     ilr im1 in0 io1 is1 it0 jer lar ler me1 my0 na1 no0 of1 on0 op1 or1 os1 se1 so0 sur to0 um1 \
     unr up1 us1 we0 èr é0 ",
    "act1 add1 age1 air1 all0 alsg and0 any1 api1 are1 big1 box1 but0 can1 cher com1 con1 css1 \
     das1 day1 def1 delr deng derg desg did1 die1 due1 eeng end0 est1 far1 few1 for0 get1 got1 \
     had1 has1 her1 hetg him1 his0 how0 int1 job1 key1 lasr lesr let1 losr low1 man1 map1 max1 \
     may0 men1 metg min1 net1 new0 non1 not1 now1 off1 old1 one0 our1 out1 own1 parr per1 porr \
     put1 quer red1 run1 say1 see0 set1 she0 six1 son1 std1 the0 too1 top1 try1 two1 unar undg \
     uner url1 use1 van1 var1 vong war0 was1 way1 who1 why1 you0 ",
    "able1 also1 area1 away1 añor back1 base1 been1 best1 body1 book1 both1 call1 came1 care1 \
     case1 city0 code1 come1 comor data1 date1 days1 does1 done1 door1 down1 each1 east0 else1 \
     este1 even1 face1 file0 find1 five1 form1 four1 free1 from0 full1 fürg game1 give1 good1 \
     half1 have1 head1 held1 help1 here1 high0 home1 html1 http1 into1 item1 join1 json1 july0 \
     june0 just1 know1 land1 last1 late1 left1 less1 life1 like1 line1 list0 live1 load1 long1 \
     look1 love1 made1 main1 make1 many1 more0 most1 move1 much1 must1 másr name1 near1 need1 \
     next1 none0 note1 null1 nãor once1 only1 open1 over1 page1 parar park1 part1 past1 path1 \
     piùr play1 port1 post1 push1 read1 real1 road1 role1 room1 said1 same1 save1 says1 self1 \
     send1 show1 side1 site1 size1 some1 star1 step1 such1 take1 team1 term1 test1 text1 than1 \
     that0 them1 then1 they0 this0 time1 told1 took1 town1 true0 type1 used1 user0 very1 view0 \
     void1 want1 week1 well1 went1 were1 west0 what0 when0 will1 with0 word1 work1 year1 your1 ",
    "about0 above1 added1 after0 again1 along1 among1 april0 async1 await1 award1 añosr based1 \
     began1 being1 below1 black1 board1 break1 build1 built1 check1 class1 close1 const1 could1 \
     count1 dellar early1 email1 error1 event1 every1 false0 field1 files1 final1 first0 float1 \
     force1 found1 front1 given1 going1 great1 green1 group1 house0 https1 index1 input1 items1 \
     known1 label1 large1 later1 least1 level1 light1 local1 major1 march0 match1 means1 might1 \
     model1 money1 month1 names1 never1 night1 north0 often1 older1 order1 other1 param1 party1 \
     place1 point1 power1 press1 price1 print1 query1 range1 right1 round1 share1 short1 since1 \
     small1 south0 space1 start1 state0 still1 story1 study1 super1 table1 their1 there0 these0 \
     think1 third1 those1 three1 times1 title1 today1 token1 total1 track1 trèsr under1 units1 \
     until1 users1 using1 value1 water1 where1 which1 while0 white0 width1 works1 world0 would1 \
     write1 years1 étér êtrer überg ",
    "access1 across1 active1 always1 annéer around1 august0 became1 become1 before1 better1 \
     called1 center1 change1 column1 common1 config1 county0 course1 create1 define1 design1 \
     double1 during0 either1 events1 except1 export1 family1 format1 former1 future1 github1 \
     having1 height1 import1 income1 length1 little1 making1 market1 median1 member1 models1 \
     months1 number1 object1 office1 option1 others1 output1 params1 people0 period1 person1 \
     please1 points1 public1 random1 really1 record1 region1 report1 result1 return1 review1 \
     school0 second1 series1 should1 single1 source1 square1 static1 status1 street1 string0 \
     system0 things1 though1 update1 values1 window1 within1 ",
    "account1 address1 against1 already1 another1 article1 average1 because1 between1 ceiling4 \
     command1 company1 content1 context1 control1 country1 created1 current1 default1 details1 \
     example1 further1 general0 however0 include1 january0 license0 members1 message1 million1 \
     october0 options1 perhaps4 present1 private1 process1 product1 program1 project1 related1 \
     release1 request1 require1 results1 running1 science1 section1 service1 several1 special1 \
     sponsor4 started1 support1 through1 tuesday4 vacancy4 various1 vehicle4 version1 without1 \
     working1 written1 ",
    "adjusted4 although1 anywhere4 asbestos4 building1 business1 december0 director1 document1 \
     estoppel4 february0 function1 guaranty4 included1 language1 material1 mortgage4 november0 \
     official1 original1 pipeline4 plumbing4 position1 products1 property1 pursuant4 question1 \
     received1 required1 research1 response1 reviewed4 services1 sponsors4 subtotal4 together1 \
     tomorrow5 unlikely4 upgraded4 upgrades4 wetlands4 ",
    "according0 afternoon4 appraisal4 appraiser4 attorneys4 available1 borrowers4 brokerage4 \
     clubhouse5 community1 confirmed4 deadlines4 different1 estoppels4 following1 guarantee4 \
     guarantor4 hereunder4 important1 including1 indemnity4 lifestyle5 mentioned4 mezzanine5 \
     mortgages4 occupancy4 otherwise4 outparcel4 paralegal4 portfolio4 president0 quarterly4 \
     reviewing4 scenarios4 september0 sincerely4 something1 sometimes4 somewhere4 sprinkler5 \
     subtenant4 timestamp4 unaudited4 unlevered4 warehouse4 waterfall4 wednesday4 yesterday4 ",
    "additional2 architects2 commission2 completely2 concession2 considered2 difference2 \
     especially2 everything2 experience2 financials2 individual2 interested2 investment2 \
     management1 materially2 particular2 properties2 sprinklers5 statements2 structural2 \
     understand2 violations2 ",
    "considering2 description1 development1 encumbrance5 information1 investments2 origination2 \
     sensitivity5 significant2 spreadsheet6 termination2 ",
    "acquisitions5 construction2 neighborhood5 ",
    "approximately3 clarification3 contamination3 distributions3 environmental3 significantly3 \
     subordination3 substantially3 ",
    "representation2 uncontrollable6 ",
    "notwithstanding6 representations2 ",
];

/// The tokenizer's punctuation pieces of two characters or more, by length, sorted, each
/// followed by a space.
const PUNCT_TABLE: [&str; 17] = [
    "",
    "",
    "!= ![ \"\" \") \", \". \": \"; \"> ## ${ && '' ') ', ': '; '] (\" ($ (' (( () ([ ({ )) ), ). ): ); ){ ** */ ++ += ,\" -- -> .\" ., .. ./ ._ // /> :: := </ << =\" =' == => ={ ># >< ?? [\" [' [] ]( ]) ], ]. ]; ][ __ `` || }) }, }; ",
    "\"\"\" \"). \"); \",\" ### '). '); ',' './ ()) (). (): (); )); *** --- ... ../ /// :// === ></ ??? ___ ``` }); ",
    "#### ()); );); **** ---- .... ././ //// ==== ???? ____ ```` ",
    "",
    "###### ****** ------ ...... ====== ______ ",
    "",
    "######## ******** ........ ======== ________ ",
    "",
    "",
    "",
    "############ ************ ............ ============ ",
    "",
    "",
    "",
    "################ ................ ================ ",
];

/// Estimated input tokens of a request: the system prompt plus its messages.
pub fn estimate_request_tokens<'a>(system: &str, messages: impl IntoIterator<Item = &'a str>) -> u64 {
    estimate_with_system_tokens(estimate_text_tokens(system), messages)
}

/// The same, when only the system prompt's estimate is known (the browser's case).
pub fn estimate_with_system_tokens<'a>(system_tokens: u64, messages: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut total = PER_REQUEST_TOKENS + system_tokens;
    for content in messages {
        total += PER_MESSAGE_TOKENS + estimate_text_tokens(content);
    }
    total
}

/// The tightest and loosest corrections calibration may apply: the rule follows Claude 5's
/// tokenizer to within a few percent, and older Claude tokenizers count about a fifth fewer
/// tokens, so a larger gap means odd samples, not a better estimate.
pub const CALIBRATION_RANGE: (f64, f64) = (0.75, 1.5);

/// Correction of the estimator for one model and operation: actual input tokens over
/// estimated ones, from recent calls `(estimated, actual)`. Clamped to
/// `CALIBRATION_RANGE` so a few unusual texts cannot make the estimator absurd; 1.0
/// without data.
pub fn calibration_factor(samples: &[(u64, u64)]) -> f64 {
    let estimated: u64 = samples.iter().map(|s| s.0).sum();
    let actual: u64 = samples.iter().map(|s| s.1).sum();
    if estimated == 0 || actual == 0 {
        return 1.0;
    }
    (actual as f64 / estimated as f64).clamp(CALIBRATION_RANGE.0, CALIBRATION_RANGE.1)
}

/// A raw estimate corrected by a calibration factor.
pub fn corrected(estimate: u64, factor: f64) -> u64 {
    (estimate as f64 * factor).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_is_free_and_whitespace_costs_a_token_a_run() {
        assert_eq!(estimate_text_tokens(""), 0);
        assert_eq!(estimate_text_tokens("   \n\t"), 3);
        assert_eq!(estimate_text_tokens("hello\n"), estimate_text_tokens("hello"), "the frame ends in newlines");
    }

    /// Texts the estimate counts exactly as Claude 5 does (ctok's "4.8" content tokens).
    #[test]
    fn counts_like_claude_where_the_rule_is_exact() {
        for (text, claude) in [
            ("The property is a twenty storey office tower with a strong tenant roster and good access to transit", 27),
            ("the tenant", 4),
            ("The Tenant", 5),
            ("NOI", 3),
            ("rsf", 3),
            ("it's", 2),
            ("2024-03-15", 6),
            ("cap rate 6.5% on $12,500,000", 16),
            ("{\"sf\": 12500}", 9),
            ("w1 w2 w3 ", 9),
        ] {
            assert_eq!(estimate_text_tokens(text), claude, "{text:?}");
        }
    }

    #[test]
    fn word_and_punctuation_tables_are_sorted_records() {
        for (tagged, table) in [(true, &WORD_TABLE[..]), (false, &PUNCT_TABLE[..])] {
            for (length, group) in table.iter().enumerate() {
                let stride = length + 1 + usize::from(tagged);
                assert_eq!(group.len() % stride, 0, "group {length}: {group:?}");
                let records: Vec<&str> = (0..group.len() / stride).map(|i| &group[i * stride..(i + 1) * stride]).collect();
                for pair in records.windows(2) {
                    assert!(pair[0][..length] < pair[1][..length], "{pair:?} out of order");
                }
                for record in records {
                    assert!(record.ends_with(' ') && !record[..length].contains(' '), "{record:?}");
                    assert!(!tagged || "0123456gr".contains(&record[length..length + 1]), "{record:?}");
                    assert!(find(group, stride, &record[..length]).is_some(), "{record:?} not found");
                }
            }
        }
    }

    /// What keeps `estimates_windows_and_titles_hold_for_any_text` (a text doubled never
    /// costs less) true for a single word: a listed word costs no more than itself twice.
    #[test]
    fn a_listed_word_doubled_never_costs_less() {
        for (length, group) in WORD_TABLE.iter().enumerate() {
            for record in group.as_bytes().chunks(length + 2) {
                let word = std::str::from_utf8(&record[..length]).expect("utf-8");
                let mut chars = word.chars();
                let capitalized = chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default();
                for word in [word.to_string(), capitalized] {
                    let doubled = format!("{word}{word}");
                    assert!(estimate_text_tokens(&doubled) >= estimate_text_tokens(&word), "{word}");
                }
            }
        }
    }

    #[test]
    fn prose_is_about_four_characters_per_token() {
        let prose = "The property is a twenty storey office tower with a strong tenant roster and good access to transit";
        let tokens = estimate_text_tokens(prose);
        let chars = prose.chars().count() as u64;
        assert!(tokens * 35 / 10 <= chars && chars <= tokens * 55 / 10, "{tokens} tokens for {chars} chars");
    }

    #[test]
    fn code_costs_more_per_character_than_prose() {
        let code = "fn cap(noi: f64, price: f64) -> f64 { (noi / price) * 100.0 }";
        let prose = "the capital rate is the net operating income divided by the price we pay";
        let per_char = |t: &str| estimate_text_tokens(t) as f64 / t.chars().count() as f64;
        assert!(per_char(code) > per_char(prose) * 1.3);
    }

    #[test]
    fn requests_add_framing_per_message() {
        let single = estimate_request_tokens("sys", ["hello"]);
        let double = estimate_request_tokens("sys", ["hello", "hello"]);
        assert_eq!(double - single, PER_MESSAGE_TOKENS + estimate_text_tokens("hello"));
        assert_eq!(estimate_request_tokens("", []), PER_REQUEST_TOKENS);
    }

    #[test]
    fn calibration_converges_on_what_claude_reports() {
        // A tokenizer that counts 30% more than the estimator, with ±10% noise per call.
        let mut samples: Vec<(u64, u64)> = Vec::new();
        let mut errors = Vec::new();
        for i in 0..60u64 {
            let estimated = 500 + (i * 137) % 900;
            let noise = [1.0, 0.9, 1.05, 1.1, 0.95][(i % 5) as usize];
            let actual = (estimated as f64 * 1.3 * noise).round() as u64;
            let recent = &samples[samples.len().saturating_sub(50)..];
            let predicted = corrected(estimated, calibration_factor(recent));
            errors.push((predicted as f64 - actual as f64).abs() / actual as f64);
            samples.push((estimated, actual));
        }
        assert!(errors[0] > 0.2, "uncalibrated estimates are off by {:.0}%", errors[0] * 100.0);
        let late: f64 = errors[40..].iter().sum::<f64>() / 20.0;
        assert!(late < 0.08, "calibrated estimates are off by {:.1}% on average", late * 100.0);
        let factor = calibration_factor(&samples[10..]);
        assert!((factor - 1.3).abs() < 0.05, "factor {factor}");
    }

    #[test]
    fn calibration_without_data_or_with_outliers_stays_sane() {
        assert_eq!(calibration_factor(&[]), 1.0);
        assert_eq!(calibration_factor(&[(0, 100)]), 1.0);
        assert_eq!(calibration_factor(&[(10, 100_000)]), 1.5);
        assert_eq!(calibration_factor(&[(100_000, 10)]), 0.75);
        assert_eq!(corrected(100, 1.3), 130);
        assert_eq!(corrected(101, 1.0), 101);
    }

    /// Claude's own counts of realistic deal text (`bench/estimate`: a corpus of memos,
    /// emails, rent rolls, JSON, code and non-English text, counted by ctok). Each sample is
    /// scored after the correction `calibration_factor` fits on the other samples
    /// (leave-one-out), so no sample grades a factor fitted on itself.
    #[test]
    fn calibrated_estimates_match_claude_on_deal_text() {
        let bench = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/estimate");
        let read = |path: std::path::PathBuf| std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let reference: serde_json::Value = serde_json::from_str(&read(bench.join("reference.json"))).expect("reference.json");
        let counts = reference["content_tokens"].as_object().expect("content_tokens");
        let on_disk = std::fs::read_dir(bench.join("corpus")).expect("corpus").count();
        assert_eq!(counts.len(), on_disk, "reference.json is stale: run bench/estimate/run.sh");
        assert!(counts.len() >= 40);
        let samples: Vec<(&str, u64, u64)> = counts
            .iter()
            .map(|(name, actual)| (name.as_str(), estimate_text_tokens(&read(bench.join("corpus").join(name))), actual.as_u64().expect("count")))
            .collect();
        let relative = |predicted: u64, actual: u64| (predicted as f64 - actual as f64) / actual as f64;
        let mut report = String::new();
        let (mut raw, mut calibrated) = (Vec::new(), Vec::new());
        for (i, &(name, estimate, actual)) in samples.iter().enumerate() {
            let others: Vec<(u64, u64)> = samples.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, s)| (s.1, s.2)).collect();
            let factor = calibration_factor(&others);
            raw.push(relative(estimate, actual).abs());
            calibrated.push(relative(corrected(estimate, factor), actual));
            report += &format!("{name:40} estimate {estimate:5} claude {actual:5} calibrated {:+.1}%\n", calibrated[i] * 100.0);
        }
        let mean = |errors: &[f64]| errors.iter().map(|e| e.abs()).sum::<f64>() / errors.len() as f64;
        let worst = |errors: &[f64]| errors.iter().fold(0.0_f64, |w, e| w.max(e.abs()));
        let all: Vec<(u64, u64)> = samples.iter().map(|s| (s.1, s.2)).collect();
        report += &format!(
            "{} samples; before calibration mean {:.1}% worst {:.1}%; calibrated (factor {:.3} on all) mean {:.2}% worst {:.2}%",
            samples.len(),
            mean(&raw) * 100.0,
            worst(&raw) * 100.0,
            calibration_factor(&all),
            mean(&calibrated) * 100.0,
            worst(&calibrated) * 100.0
        );
        eprintln!("{report}");
        assert!(mean(&calibrated) <= 0.02 && worst(&calibrated) <= 0.05, "{report}");
    }

    #[test]
    fn estimates_grow_monotonically_with_text() {
        let mut text = String::new();
        let mut last = 0;
        for word in ["cap", " rate", " 6.5%", " on", " $12,500,000", " {json: true}"] {
            text.push_str(word);
            let now = estimate_text_tokens(&text);
            assert!(now >= last);
            last = now;
        }
    }
}
