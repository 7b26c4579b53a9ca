"""The studio's product list: a host sees and edits only their own products.

A host edits a product's name and price inline (a refused edit says which field and why, under
that input, as text), pins it, and the room's product card shows the new name; another host's
product is never listed. The new-product form places a refusal the same way.
"""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp

from tests.browser.conftest import (
    DESKTOP,
    Api,
    LiveServer,
    new_show,
    open_page,
    screenshot,
)


async def test_a_host_edits_their_product_and_the_room_shows_it_after_a_pin(
    browser: Any, live_server: LiveServer, host_api: Api, http: aiohttp.ClientSession
) -> None:
    tag = uuid.uuid4().hex[:4]
    stream_id = await new_show(host_api, f"Edit night {tag}")
    mug = await host_api.call(
        "POST", "/api/products", {"name": f"Plain mug {tag}", "price_cents": 1200}, status=201
    )
    hank = Api(live_server, http, live_server.token("host", "hank", "Hank"))
    await hank.call("POST", "/api/products", {"name": f"Hank lamp {tag}", "price_cents": 900}, 201)

    token = live_server.token("host", "hana", "Hana")
    studio = await open_page(
        browser, f"{live_server.url}/studio/{stream_id}#token={token}", DESKTOP
    )
    row = studio.locator("#products .product", has_text=f"Plain mug {tag}")
    await row.wait_for()
    names = await studio.locator("#products .product-name").all_text_contents()
    assert f"Hank lamp {tag}" not in names  # another host's product is not listed

    await row.get_by_role("button", name=f"Edit Plain mug {tag}").click()
    form = studio.locator(f"#products form.product-edit[data-product='{mug['id']}']")
    await form.locator("input[name=name]").fill(f"Glazed mug {tag}")
    await form.locator("input[name=price]").fill("15.00")
    # A member price above the price is refused: the form names the member price and the rule
    # under that input, and stays open.
    member = form.locator("input[name=member_price]")
    await member.fill("20.00")
    await form.locator("button[type=submit]").click()
    note = form.locator(".field-error")
    await note.wait_for()
    assert await note.text_content() == "The member price must be below the price"
    beside = "i => i.closest('label').querySelector('.field-error').textContent"
    assert await member.evaluate(beside) == await note.text_content()  # in the input's label
    assert await member.get_attribute("aria-invalid") == "true"
    assert await form.locator(".form-error").text_content() == ""  # said once, where it happened
    await screenshot(studio, "studio-product-edit-refused-desktop")
    await member.fill("")
    assert await note.count() == 0  # typing there takes the note away
    await form.locator("button[type=submit]").click()
    edited = studio.locator("#products .product", has_text=f"Glazed mug {tag}")
    await edited.wait_for()
    assert await form.count() == 0
    assert "$15.00" in (await edited.text_content() or "")
    saved = next(p for p in (await host_api.call("GET", "/api/products?mine=1"))["products"]
                 if p["id"] == mug["id"])  # fmt: skip
    assert (saved["name"], saved["price_cents"]) == (f"Glazed mug {tag}", 1500)

    # Creating one: the same refusal under the new-product form's member price.
    await studio.click("#new-product")
    await studio.fill("#pf-name", f"Bowl {tag}")
    await studio.fill("#pf-price", "10.00")
    await studio.fill("#pf-member-price", "10.00")
    await studio.click("#product-form button[type=submit]")
    created = studio.locator("#product-form .field-error[data-field=member_price_cents]")
    await created.wait_for()
    assert await created.text_content() == "The member price must be below the price"
    await studio.click("#pf-cancel")

    viewer = await open_page(browser, f"{live_server.url}/live/{stream_id}")
    await edited.get_by_role("button", name=f"Pin Glazed mug {tag} for viewers").click()
    await viewer.locator("#product-name", has_text=f"Glazed mug {tag}").wait_for()
    assert await viewer.text_content("#product-name") == f"Glazed mug {tag}"
    assert await viewer.is_visible("#product-card")
    assert studio.errors == [] and viewer.errors == []


async def test_a_host_adds_a_product_with_its_description_from_the_studio(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    """The + New form takes a description, as the edit form does, and the product keeps it."""
    tag = uuid.uuid4().hex[:4]
    stream_id = await new_show(host_api, f"New product night {tag}")
    token = live_server.token("host", "hana", "Hana")
    studio = await open_page(
        browser, f"{live_server.url}/studio/{stream_id}#token={token}", DESKTOP
    )
    await studio.click("#new-product")
    await studio.fill("#pf-name", f"Speckled mug {tag}")
    await studio.fill("#pf-price", "24.90")
    await studio.fill("#pf-description", "Thrown by hand; no two alike.")
    await studio.fill("#pf-member-price", "30")
    await studio.click("#product-form button[type=submit]")
    await studio.locator(
        "#product-form .field-error", has_text="The member price must be below the price"
    ).wait_for()  # under the member price, said once
    await studio.fill("#pf-member-price", "")
    await studio.click("#product-form button[type=submit]")
    await studio.locator("#products .product", has_text=f"Speckled mug {tag}").wait_for()
    saved = next(p for p in (await host_api.call("GET", "/api/products?mine=1"))["products"]
                 if p["name"] == f"Speckled mug {tag}")  # fmt: skip
    assert (saved["price_cents"], saved["description"]) == (2490, "Thrown by hand; no two alike.")
    assert studio.errors == []
