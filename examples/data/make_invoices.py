#!/usr/bin/env python3
"""Generates examples/data/invoices.jsonl: synthetic invoice OCR text with questions about its fields.

Each invoice is a block of OCR-style lines in a varying order and in English, Chinese or both, with
distractors a model has to tell apart from the answer (order number beside invoice number, due date
beside issue date, subtotal and tax beside total, buyer beside seller). Several questions are asked of
each invoice, in English and Chinese; each question is its own sample, and its answer is copied
verbatim from the text. Deterministic: the same seed writes the same file.

    python3 examples/data/make_invoices.py [--invoices 900] [--seed 2025] [--out examples/data/invoices.jsonl]
"""
import argparse
import json
import random

CITIES_ZH = ["上海", "北京", "深圳", "杭州", "成都", "苏州", "广州", "南京"]
CITIES_EN = ["Shanghai", "Beijing", "Shenzhen", "Hangzhou", "Chengdu", "Suzhou", "Guangzhou", "Nanjing"]
TRADES_ZH = ["华信贸易", "恒通科技", "瑞丰物流", "金桥电子", "博远印刷", "明达建材", "新元食品", "海川机械"]
TRADES_EN = ["Huaxin Trading", "Hengtong Tech", "Ruifeng Logistics", "Jinqiao Electronics",
             "Boyuan Printing", "Mingda Materials", "Xinyuan Foods", "Haichuan Machinery"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

# field -> (English labels, Chinese labels)
LABELS = {
    "invoice_no": (["Invoice No.", "Invoice Number", "INVOICE #"], ["发票号码", "发票号"]),
    "order_no": (["PO Number", "Order No.", "Ref"], ["订单号", "采购单号"]),
    "date": (["Invoice Date", "Date of Issue", "Issued"], ["开票日期", "日期"]),
    "due": (["Due Date", "Payment Due"], ["付款期限", "到期日"]),
    "seller": (["Seller", "Vendor", "From"], ["销售方", "销方名称"]),
    "buyer": (["Buyer", "Bill To", "Customer"], ["购买方", "购方名称"]),
    "subtotal": (["Subtotal", "Amount"], ["金额", "小计"]),
    "tax": (["Tax", "VAT"], ["税额"]),
    "total": (["Total", "Total Due", "Amount Due"], ["价税合计", "合计金额", "总计"]),
}

QUESTIONS = {
    "invoice_no": (["What is the invoice number?", "Invoice number?"], ["发票号码是什么？", "发票号是多少？"]),
    "date": (["What is the invoice date?", "When was the invoice issued?"], ["开票日期是哪天？", "发票日期是什么？"]),
    "due": (["When is payment due?", "What is the due date?"], ["付款期限是哪天？"]),
    "seller": (["Who is the seller?", "Which company issued the invoice?"], ["销售方是谁？", "销方名称是什么？"]),
    "buyer": (["Who is the buyer?", "Who is the invoice billed to?"], ["购买方是谁？"]),
    "tax": (["How much is the tax?", "What is the VAT amount?"], ["税额是多少？"]),
    "total": (["What is the total amount?", "How much is due in total?"], ["价税合计是多少？", "总金额是多少？"]),
}


def company(rng, chinese):
    i, j = rng.randrange(len(CITIES_ZH)), rng.randrange(len(TRADES_ZH))
    if chinese:
        return f"{CITIES_ZH[i]}{TRADES_ZH[j]}有限公司"
    return f"{CITIES_EN[i]} {TRADES_EN[j]} Co., Ltd."


def date_text(rng, year, month, day, style):
    if style == 0:
        return f"{year}-{month:02d}-{day:02d}"
    if style == 1:
        return f"{year}/{month:02d}/{day:02d}"
    if style == 2:
        return f"{day} {MONTHS[month - 1]} {year}"
    return f"{year}年{month}月{day}日"


def money(rng, value, style):
    text = f"{value:,.2f}" if rng.random() < 0.6 else f"{value:.2f}"
    return [f"¥{text}", f"CNY {text}", f"${text}", f"{text}元"][style]


def make_invoice(rng):
    chinese = rng.random() < 0.5
    year = rng.choice([2023, 2024, 2025])
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    due_month, due_day = month % 12 + 1, rng.randint(1, 28)
    date_style, money_style = rng.randrange(4), rng.randrange(4)
    subtotal = round(rng.uniform(50, 90000), 2)
    rate = rng.choice([0.03, 0.06, 0.09, 0.13])
    tax = round(subtotal * rate, 2)
    prefix = rng.choice(["INV-", "INV", "FP-", "No."])
    seller, buyer = company(rng, chinese), company(rng, rng.random() < 0.5)
    while buyer == seller:
        buyer = company(rng, rng.random() < 0.5)
    values = {
        "invoice_no": f"{prefix}{year}-{rng.randint(1, 9999):04d}",
        "order_no": f"PO-{year}-{rng.randint(1, 9999):04d}",
        "date": date_text(rng, year, month, day, date_style),
        "due": date_text(rng, year + (month == 12), due_month, due_day, date_style),
        "seller": seller,
        "buyer": buyer,
        "subtotal": money(rng, subtotal, money_style),
        "tax": money(rng, tax, money_style),
        "total": money(rng, subtotal + tax, money_style),
    }
    fields = list(values)
    rng.shuffle(fields)
    separator = rng.choice([": ", "：", " ", ": "])
    lines = []
    for field in fields:
        english, zh = LABELS[field]
        label = rng.choice(zh if (chinese and rng.random() < 0.8) else english)
        lines.append(f"{label}{separator}{values[field]}")
    header = rng.choice(["增值税普通发票", "INVOICE", "Commercial Invoice", "增值税专用发票 VAT INVOICE"])
    joiner = rng.choice(["\n", " | ", " "])
    return header + joiner + joiner.join(lines), values


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=900)
    parser.add_argument("--questions-per-invoice", type=int, default=4)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--out", default="examples/data/invoices.jsonl")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with open(args.out, "w", encoding="utf-8") as out:
        for doc in range(args.invoices):
            context, values = make_invoice(rng)
            for field in rng.sample(sorted(QUESTIONS), args.questions_per_invoice):
                english, zh = QUESTIONS[field]
                question = rng.choice(zh if rng.random() < 0.5 else english)
                sample = {"id": f"inv{doc:04d}-{field}", "question": question, "context": context,
                          "answer": values[field]}
                out.write(json.dumps(sample, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
