//! The chart series against figures computed another way: the last point of each equals
//! the view it charts and the generator's reference model, a point in the middle equals
//! the stockpile view of a fold stopped at the end of that day, and a tiny hand-made
//! ledger gives exactly the points one can count by hand.

use crate::support::{Ledger, all_configs, date, ledger, markup_ledger};
use stockpile_views::digest::views_today;
use stockpile_views::series::{
    SERIES_POINTS_MAX, StockPoint, UnitsPoint, deadline_line, destroyed_over_time, stock_over_time,
};
use stockpile_views::views;

fn name(ledger: &Ledger) -> String {
    format!(
        "{} padded to {}",
        ledger.config.dataset, ledger.config.min_entries
    )
}

#[test]
fn held_stock_over_time_ends_at_the_stockpile_views_totals() {
    for config in all_configs() {
        let ledger = ledger(&config);
        let name = name(ledger);
        let fold = ledger.fold_all();
        let series = stock_over_time(&fold);
        assert!(
            (2..=SERIES_POINTS_MAX).contains(&series.len()),
            "{name}: {} points",
            series.len()
        );
        assert!(
            series.windows(2).all(|pair| pair[0].date < pair[1].date),
            "{name}: dates in order, once each"
        );
        let last = series.last().unwrap();
        let totals = views::stockpile(&fold).totals;
        assert_eq!(last.date, views_today(&fold), "{name}: ends today");
        assert_eq!(last.held, totals.held(), "{name}: held");
        assert_eq!(last.stockpiled, totals.stockpiled, "{name}: stockpiled");
        assert_eq!(
            last.held,
            ledger.outcome.expected.totals.held(),
            "{name}: the reference model's held units"
        );
    }
}

#[test]
fn a_point_in_the_middle_is_the_stockpile_at_the_end_of_its_day() {
    let config = all_configs()
        .into_iter()
        .find(|config| config.min_entries > 0)
        .expect("a padded config");
    let ledger = ledger(&config);
    let series = stock_over_time(&ledger.fold_all());
    let picks = [1, series.len() / 4, series.len() / 2, series.len() * 3 / 4];
    for pick in picks {
        let point: StockPoint = series[pick];
        let mut fold = ledger.empty_fold();
        for entry in &ledger.entries {
            if fold.apply_through(entry, point.date).unwrap().is_none() {
                break;
            }
        }
        let totals = views::stockpile(&fold).totals;
        assert_eq!(
            (point.held, point.stockpiled),
            (totals.held(), totals.stockpiled),
            "point {pick} ({}) against a fold through that day",
            point.date
        );
    }
}

#[test]
fn destroyed_over_time_ends_at_destruction_progress() {
    for config in all_configs() {
        let ledger = ledger(&config);
        let name = name(ledger);
        let fold = ledger.fold_all();
        let today = views_today(&fold);
        let progress = views::destruction_progress(&fold, today);
        let series = destroyed_over_time(&fold);
        assert!(
            (2..=SERIES_POINTS_MAX).contains(&series.len()),
            "{name}: {} points",
            series.len()
        );
        assert!(
            series
                .windows(2)
                .all(|pair| pair[0].date < pair[1].date && pair[0].units <= pair[1].units),
            "{name}: cumulative, dates in order"
        );
        let (first, last) = (series[0], *series.last().unwrap());
        assert_eq!(Some(first.date), progress.eif_date, "{name}: starts at EIF");
        assert_eq!(first.units, 0, "{name}");
        assert_eq!(last.date, today, "{name}: ends today");
        assert_eq!(last.units, progress.destroyed_since_eif, "{name}");
        assert_eq!(
            last.units, ledger.outcome.expected.totals.destroyed,
            "{name}: the reference model's destroyed units"
        );
        match deadline_line(&progress) {
            Some([start, end]) => {
                assert_eq!(start, first, "{name}: the line starts at EIF, from zero");
                assert_eq!(Some(end.date), progress.article4_deadline, "{name}");
                assert_eq!(
                    end.units,
                    progress.destroyed_since_eif + progress.remaining,
                    "{name}: everything destroyed by the deadline"
                );
            }
            None => assert_eq!(progress.article4_deadline, None, "{name}"),
        }
    }
}

#[test]
fn a_hand_made_ledger_gives_the_points_counted_by_hand() {
    // Declared 1,000 on 2011-03-01 (EIF 2010-01-01, deadline 2014-01-01); 400 shipped,
    // received and destroyed the same day.
    let (hand, _lot_id) = markup_ledger();
    let fold = hand.fold();
    let day = date("2011-03-01");
    assert_eq!(
        stock_over_time(&fold),
        vec![StockPoint {
            date: day,
            held: 600,
            stockpiled: 600
        }]
    );
    assert_eq!(
        destroyed_over_time(&fold),
        vec![
            UnitsPoint {
                date: date("2010-01-01"),
                units: 0
            },
            UnitsPoint {
                date: day,
                units: 400
            },
        ]
    );
    let progress = views::destruction_progress(&fold, views_today(&fold));
    assert_eq!(
        deadline_line(&progress),
        Some([
            UnitsPoint {
                date: date("2010-01-01"),
                units: 0
            },
            UnitsPoint {
                date: date("2014-01-01"),
                units: 1_000
            },
        ])
    );
}
